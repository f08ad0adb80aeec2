{#-
  Views rebuilt only when something they are built from has changed.

  A view is a stored query: rebuilding one whose query, grants, docs and inputs are the same changes
  nothing, yet it costs statements, catalog churn and an ACCESS EXCLUSIVE lock on the view, which
  waits behind any open transaction that has read the view (the online path reads
  int_creators_derived) and makes every later reader wait behind it. So both view materializations
  (view, detached_view) first compute a fingerprint of

      the materialization's version (csinfra_view_fingerprint_version below: change it whenever
      either materialization changes what it creates),
      the compiled SQL (which holds every ref, var and rule constant the model uses),
      the grants and the documentation persisted as comments,
      the columns and types of every relation the model reads (a parent view that gained a column,
      an application column that was retyped),

  and skip the build when the view exists as the same object (same oid) the last build recorded with
  that fingerprint in <schema>.view_fingerprints. --full-refresh always rebuilds. dbt reports a
  skipped view as UNCHANGED.
-#}

{% macro csinfra_view_fingerprint_version() -%}
    csinfra-views-2
{%- endmacro %}


{#- on-run-start: the table the fingerprints are kept in (created once, before any thread needs it) -#}
{% macro csinfra_view_fingerprints_ddl() %}
    {#- the application's PostgreSQL only: nothing to check or grant where the marts build from the lake -#}
    {%- if not execute or target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    {% call statement('view_fingerprints_ddl') -%}
        create schema if not exists {{ csinfra_ident(target.schema) }};
        create table if not exists {{ csinfra_view_fingerprints_relation() }} (
            relation text primary key,
            relation_oid oid not null,
            fingerprint text not null,
            built_at timestamptz not null default clock_timestamp()
        );
        comment on table {{ csinfra_view_fingerprints_relation() }} is
            'What each view was last built from (macros/materializations/unchanged_views.sql): a view whose fingerprint is unchanged is not rebuilt.';
    {%- endcall %}
    {% do adapter.commit() %}
{% endmacro %}


{#- The table of what each view (and each catalog seed) was last built from: <target schema>.view_fingerprints. -#}
{% macro csinfra_view_fingerprints_relation() -%}
    {{ csinfra_ident(target.schema) }}.view_fingerprints
{%- endmacro %}


{#- (fingerprint, unchanged): this model's fingerprint now, and whether the view in place was built from it -#}
{% macro csinfra_view_fingerprint(relation, compiled_sql) %}
    {%- set relation = relation.include(database=False) | string -%}
    {%- set inputs = [] -%}
    {%- for uid in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(uid) if uid in graph.nodes else graph.sources.get(uid) -%}
        {%- if node is not none and node.schema is defined -%}
            {%- set name = node.alias if node.alias is defined and node.alias else node.identifier -%}
            {%- do inputs.append('(' ~ loop.index ~ ', ' ~ csinfra_quote(csinfra_ident(node.schema) ~ '.' ~ csinfra_ident(name)) ~ ')') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set docs = {'description': model.description, 'columns': {}} -%}
    {%- for name, column in model.columns.items() -%}{%- do docs.columns.update({name: column.description}) -%}{%- endfor -%}
    {%- set state = csinfra_query(
        "select "
        ~ (("(select string_agg(i.name || ':' || coalesce(s.signature, 'missing'), ';' order by i.position) "
            ~ "from (values " ~ (inputs | join(', ')) ~ ") as i (position, name) "
            ~ "left join lateral (select string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' "
            ~ "order by a.attnum) as signature from pg_attribute as a where a.attrelid = to_regclass(i.name) "
            ~ "and a.attnum > 0 and not a.attisdropped) as s on true)") if inputs else "''")
        ~ ", (select f.fingerprint from " ~ csinfra_view_fingerprints_relation() ~ " as f "
        ~ "where f.relation = " ~ csinfra_quote(relation) ~ " and f.relation_oid = to_regclass(" ~ csinfra_quote(relation) ~ "))"
    ).rows[0] -%}
    {%- set fingerprint = local_md5(csinfra_view_fingerprint_version() ~ '\n' ~ model.config.materialized ~ '\n'
        ~ compiled_sql ~ '\n' ~ tojson(config.get('grants')) ~ '\n' ~ tojson(config.get('persist_docs')) ~ '\n'
        ~ tojson(docs) ~ '\n' ~ state[0]) -%}
    {{ return((fingerprint, state[1] == fingerprint and not should_full_refresh())) }}
{% endmacro %}


{#- after a build, in its transaction (or in one of its own): what the view in place was built from -#}
{% macro csinfra_record_view_fingerprint(relation, fingerprint) %}
    {%- set relation = relation.include(database=False) | string -%}
    {% call statement('record_view_fingerprint') -%}
        insert into {{ csinfra_view_fingerprints_relation() }} (relation, relation_oid, fingerprint)
        values ({{ csinfra_quote(relation) }}, {{ csinfra_quote(relation) }}::regclass, {{ csinfra_quote(fingerprint) }})
        on conflict (relation) do update
        set relation_oid = excluded.relation_oid, fingerprint = excluded.fingerprint, built_at = excluded.built_at
    {%- endcall %}
{% endmacro %}


{#- the result of a skipped build, as dbt reports it: `OK … [UNCHANGED in 0.02s]` -#}
{% macro csinfra_view_unchanged(relation) %}
    {% do adapter.commit() %}
    {% do store_raw_result(name='main', message='UNCHANGED', code='UNCHANGED', rows_affected='-1') %}
    {{ return({'relations': [relation]}) }}
{% endmacro %}
