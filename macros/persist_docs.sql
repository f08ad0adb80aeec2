{#- dbt's persist_docs on PostgreSQL, writing only the comments that differ from the stored ones. dbt-postgres
    comments the relation and every column at every build, incremental ones included, and COMMENT takes a SHARE
    UPDATE EXCLUSIVE lock, the lock autovacuum holds: on a mart that autovacuum is processing (one a build has just
    written), each build then waits deadlock_timeout (1 s by default) before PostgreSQL cancels the vacuum. One
    catalog query reads the stored comments; a build whose documentation did not change comments nothing. The
    comments written are dbt's (postgres_escape_comment); an empty description is no comment, as in PostgreSQL. -#}
{% macro postgres__persist_docs(relation, model, for_relation=true, for_columns=true) -%}
    {%- set want_relation = for_relation and config.persist_relation_docs() and model.description -%}
    {%- set want_columns = for_columns and config.persist_column_docs() and model.columns -%}
    {%- if not (want_relation or want_columns) -%}{{ return('') }}{%- endif -%}
    {% call statement('csinfra_stored_comments', fetch_result=True) %}
        select attribute.attname as column_name, col_description(attribute.attrelid, attribute.attnum) as comment
        from pg_attribute as attribute
        where
            attribute.attrelid = {{ csinfra_quote(csinfra_ident(relation.schema) ~ '.' ~ csinfra_ident(relation.identifier)) }}::regclass
            and attribute.attnum > 0
            and not attribute.attisdropped
        union all
        select null, obj_description({{ csinfra_quote(csinfra_ident(relation.schema) ~ '.' ~ csinfra_ident(relation.identifier)) }}::regclass, 'pg_class')
    {% endcall %}
    {%- set stored = {} -%}
    {%- set relation_comment = [''] -%}
    {%- for row in load_result('csinfra_stored_comments').table.rows -%}
        {%- if row[0] is none -%}
            {%- do relation_comment.append(row[1] or '') -%}
        {%- else -%}
            {%- do stored.update({row[0]: row[1] or ''}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- if want_relation and (model.description or '') != relation_comment[-1] -%}
        {%- set kind = 'materialized view' if relation.type == 'materialized_view' else relation.type -%}
        {%- do statements.append('comment on ' ~ kind ~ ' ' ~ relation ~ ' is ' ~ postgres_escape_comment(model.description)) -%}
    {%- endif -%}
    {%- if want_columns -%}
        {%- for column_name, column in model.columns.items() if column_name in stored -%}
            {%- if (column.description or '') != stored[column_name] -%}
                {%- set name = adapter.quote(column_name) if column.quote else column_name -%}
                {%- do statements.append('comment on column ' ~ relation ~ '.' ~ name ~ ' is '
                    ~ postgres_escape_comment(column.description)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if statements -%}
        {% do run_query(statements | join(';\n')) %}
    {%- endif -%}
{%- endmacro %}
