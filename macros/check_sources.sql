{#-
  on-run-start: every application table and column the models read (the columns listed in
  models/staging/app/_app__sources.yml) must exist, or nothing runs. The staging views pin nothing
  (materialized='detached_view'), so the application may drop, rename or retype its columns at any
  time; this check turns the next run's failure into one line that names every missing table and
  column, instead of an error deep in some model.
-#}
{% macro csinfra_check_sources() %}
    {#- the application's PostgreSQL only: nothing to check or grant where the marts build from the lake; and
        nothing to check when only the catalogs load (`dbt seed` reads no source) -#}
    {%- if not execute or target.type != 'postgres' or flags.WHICH == 'seed' -%}{{ return('') }}{%- endif -%}
    {%- set wanted = [] -%}
    {%- for node in graph.sources.values() if node.package_name == project_name -%}
        {%- do wanted.append('(' ~ csinfra_quote(node.schema) ~ ', ' ~ csinfra_quote(node.identifier) ~ ', null)') -%}
        {%- for column in node.columns.values() -%}
            {%- do wanted.append('(' ~ csinfra_quote(node.schema) ~ ', ' ~ csinfra_quote(node.identifier) ~ ', '
                ~ csinfra_quote(column.name) ~ ')') -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if wanted | length == 0 -%}{{ return('') }}{%- endif -%}
    {%- set missing = csinfra_query(
        "with wanted (schema_name, table_name, column_name) as (values " ~ (wanted | join(', ')) ~ ") "
        ~ "select case when c.oid is null then 'table ' || quote_ident(w.schema_name) || '.' || quote_ident(w.table_name) "
        ~ "else 'column ' || quote_ident(w.schema_name) || '.' || quote_ident(w.table_name) || '.' || quote_ident(w.column_name) end "
        ~ "from wanted as w "
        ~ "left join pg_namespace as n on n.nspname = w.schema_name "
        ~ "left join pg_class as c on c.relnamespace = n.oid and c.relname = w.table_name and c.relkind in ('r', 'p', 'v', 'm', 'f') "
        ~ "left join pg_attribute as a on a.attrelid = c.oid and a.attname = w.column_name and a.attnum > 0 and not a.attisdropped "
        ~ "where (c.oid is null and w.column_name is null) or (c.oid is not null and w.column_name is not null and a.attname is null) "
        ~ "order by 1"
    ).columns[0].values() -%}
    {% do adapter.commit() %}
    {%- if missing | length > 0 -%}
        {%- set phase1 = ['trustTier', 'statusHistory', 'audit_logs', 'analytics_events'] -%}
        {%- set hint = [] -%}
        {%- for item in missing -%}
            {%- for name in phase1 if name in item -%}{%- do hint.append(1) -%}{%- endfor -%}
        {%- endfor -%}
        {{ exceptions.raise_compiler_error(
            "the application's schema lacks what the models read: " ~ (missing | join(', ')) ~ " is missing"
            ~ (" (is Phase 1 applied? `csinfra migrate up`)" if hint else " (has the application changed its schema? is the app_schema var right?)")
        ) }}
    {%- endif -%}
{% endmacro %}
