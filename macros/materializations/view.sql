{#-
  Views on PostgreSQL, replaced in place.

  dbt's built-in view materialization renames the old view away and drops it with CASCADE, which
  drops every dependent view until dbt rebuilds it: a window in which the online library (whose
  functions read int_creators_derived) would fail, and a source of deadlocks between threads.
  Here, when the new query keeps every existing column (same names, types and order; new columns
  may be appended), the view is changed with CREATE OR REPLACE VIEW: no drop, no cascade, one
  short lock. Otherwise the built-in swap runs. --full-refresh rebuilds every view, in place all the
  same (a dropped view would break the online path, which runs as the application role, mid-run). A
  view whose fingerprint is unchanged is not rebuilt at all (macros/materializations/unchanged_views.sql).
-#}
{%- materialization view, adapter='postgres' -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set fingerprint, unchanged = csinfra_view_fingerprint(target_relation, sql) -%}
    {%- if unchanged and existing_relation is not none and existing_relation.is_view -%}
        {{ return(csinfra_view_unchanged(target_relation)) }}
    {%- endif -%}
    {%- set replaceable = existing_relation is not none and existing_relation.is_view -%}
    {%- if not replaceable -%}
        {%- set result = materialization_view_default() -%}
        {{ csinfra_record_view_fingerprint(target_relation, fingerprint) }}
        {% do adapter.commit() %}
        {{ return(result) }}
    {%- endif -%}

    {#- build the new definition under a probe name and compare its columns with the live view's; no hook has run
        yet, so whichever path follows runs the pre-hooks exactly once -#}
    {%- set probe_relation = make_intermediate_relation(target_relation) -%}
    {% set grant_config = config.get('grants') %}
    {{ drop_relation_if_exists(load_cached_relation(probe_relation)) }}
    {% call statement('probe') -%}
        {{ get_create_view_as_sql(probe_relation, sql) }}
    {%- endcall %}
    {%- set compatible = run_query(
        "select not exists (select from pg_attribute as old_col left join pg_attribute as new_col "
        ~ "on new_col.attrelid = " ~ csinfra_quote(probe_relation) ~ "::regclass and new_col.attnum = old_col.attnum "
        ~ "where old_col.attrelid = " ~ csinfra_quote(existing_relation) ~ "::regclass "
        ~ "and old_col.attnum > 0 and not old_col.attisdropped "
        ~ "and (new_col.attname is distinct from old_col.attname "
        ~ "or format_type(new_col.atttypid, new_col.atttypmod) is distinct from format_type(old_col.atttypid, old_col.atttypmod)))"
    ).columns[0].values()[0] -%}
    {{ drop_relation_if_exists(probe_relation) }}
    {{ adapter.commit() }}

    {%- if not compatible -%}
        {#- dbt's own swap (it runs the hooks) -#}
        {%- set result = materialization_view_default() -%}
        {{ csinfra_record_view_fingerprint(target_relation, fingerprint) }}
        {% do adapter.commit() %}
        {{ return(result) }}
    {%- endif -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {{ return(csinfra_replace_view(target_relation, sql, grant_config, post_hooks, fingerprint)) }}
{%- endmaterialization -%}


{#- The end of both view materializations, after their pre-hooks: dbt's own replace-view SQL (CREATE OR
    REPLACE VIEW: no drop, one short lock), grants, docs, the fingerprint it was built from, post-hooks, commit. -#}
{% macro csinfra_replace_view(relation, select_sql, grant_config, post_hooks, fingerprint) %}
    {% call statement('main') -%}
        {{ get_replace_view_sql(relation, select_sql) }}
    {%- endcall %}
    {% do apply_grants(relation, grant_config, should_revoke=False) %}
    {% do persist_docs(relation, model) %}
    {{ csinfra_record_view_fingerprint(relation, fingerprint) }}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [relation]}) }}
{% endmacro %}
