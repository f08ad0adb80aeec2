{#-
  materialized='detached_view': a view over the application's tables that pins nothing.

  A plain view records a dependency on every table and column it reads, so PostgreSQL refuses to
  drop, rename or retype them while it exists: the application's own ORM migrations and our
  rollback would fail with "cannot drop column … because other objects depend on it". Staging is
  the only layer that reads the application's tables, so here it is built as

      a STABLE set-returning SQL function <schema>.<model>() whose body is the model's query, and
      a view <schema>.<model> that selects from that function.

  The function body is text (not a BEGIN ATOMIC body), so PostgreSQL records no dependency on the
  application's tables; the view depends only on our function. The planner inlines the function
  (SQL language, STABLE, not STRICT, no SET clause, no SECURITY DEFINER), so a filter on the view
  still reaches the application's indexes: one creator through the online path reads one row.

  Each column is cast to the type the query has when dbt builds it (its base type, without length
  or precision, read from a temporary view dropped in the same transaction), so an application
  retype the cast can absorb (INTEGER to BIGINT, VARCHAR(50) to TEXT, …) keeps working until the
  next run rebuilds the signature, and nothing is cut or rounded. A dropped or
  renamed column or table makes the next query fail naming it, and the next `dbt run` stops at its
  start (csinfra_check_sources) with one line listing what is missing. Types must be PostgreSQL's
  own (an application enum would pin its type): cast enums to text in the model.

  When the column list changes, the function and the view are dropped (CASCADE, which reaches only
  our own views downstream; the run rebuilds them after this model) and created again. Otherwise
  both are replaced in place, so readers never see them missing. Neither is rebuilt when the model's
  fingerprint (its SQL and the columns and types of the tables it reads) is unchanged
  (macros/materializations/unchanged_views.sql).
-#}
{%- materialization detached_view, adapter='postgres' -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set function_name = csinfra_ident(this.schema) ~ '.' ~ csinfra_ident(this.identifier) -%}
    {#- a fixed name: the session's own temporary schema holds it for a moment, and identifiers are capped at 63 bytes -#}
    {%- set probe_name = 'csinfra_detached_view_columns' -%}
    {% set grant_config = config.get('grants') %}

    {#- 0. nothing to do when the view in place was built from the same SQL over the same columns -#}
    {%- set fingerprint, unchanged = csinfra_view_fingerprint(target_relation, sql) -%}
    {%- set function_exists = csinfra_query(
        "select to_regprocedure(" ~ csinfra_quote(function_name ~ '()') ~ ") is not null").columns[0].values()[0] -%}
    {%- if unchanged and function_exists and existing_relation is not none and existing_relation.is_view -%}
        {{ return(csinfra_view_unchanged(target_relation)) }}
    {%- endif -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- 1. the query's columns and exact types, from a temporary view dropped at once -#}
    {% call statement('probe_columns') -%}
        create temporary view {{ csinfra_ident(probe_name) }} as (
            {{ sql }}
        )
    {%- endcall %}
    {%- set columns = csinfra_query(
        "select a.attname, format_type(a.atttypid, a.atttypmod), "
        ~ "quote_ident(a.attname) || ' ' || format_type(a.atttypid, null), "
        ~ "t.typnamespace = 'pg_catalog'::regnamespace, format_type(a.atttypid, null) "
        ~ "from pg_attribute as a join pg_type as t on t.oid = a.atttypid "
        ~ "where a.attrelid = (select c.oid from pg_class as c where c.relname = " ~ csinfra_quote(probe_name)
        ~ " and c.relnamespace = pg_my_temp_schema()) and a.attnum > 0 and not a.attisdropped order by a.attnum"
    ) -%}
    {% call statement('drop_probe') -%}
        drop view pg_temp.{{ csinfra_ident(probe_name) }}
    {%- endcall %}
    {%- set signature = [] -%}
    {%- set select_list = [] -%}
    {%- set result_key = [] -%}
    {%- for row in columns -%}
        {%- if not row[3] -%}
            {{ exceptions.raise_compiler_error(this.identifier ~ ": column " ~ row[0] ~ " has type " ~ row[1]
                ~ ", which is not PostgreSQL's own and would pin it; cast it (an enum to text) in the model") }}
        {%- endif -%}
        {#- the base type, without length or precision (a function's result keeps none): a widened column is
            never cut or rounded by the cast -#}
        {%- do signature.append(csinfra_ident(row[0]) ~ ' ' ~ row[4]) -%}
        {%- do select_list.append('model.' ~ csinfra_ident(row[0]) ~ '::' ~ row[4] ~ ' as ' ~ csinfra_ident(row[0])) -%}
        {%- do result_key.append(row[2]) -%}
    {%- endfor -%}

    {#- 2. what exists now: our function (with which result columns), or an older relation of this name -#}
    {%- set current = csinfra_query(
        "select string_agg(quote_ident(a.name) || ' ' || format_type(a.type, null), ', ' order by a.position) "
        ~ "from pg_proc as p cross join lateral unnest(p.proallargtypes, p.proargnames, p.proargmodes) "
        ~ "with ordinality as a (type, name, mode, position) "
        ~ "where p.pronamespace = " ~ csinfra_quote(this.schema) ~ "::regnamespace and p.proname = "
        ~ csinfra_quote(this.identifier) ~ " and p.pronargs = 0 and a.mode = 't' group by p.oid"
    ) -%}
    {%- set current_key = current.columns[0].values()[0] if current.rows | length > 0 else none -%}
    {%- if current_key is not none and current_key != (result_key | join(', ')) -%}
        {#- a new column list: replace both. The view goes first through the adapter, so dbt's relation cache
            forgets the views that depend on it (CASCADE reaches our own downstream views only; the run
            rebuilds them after this model), then the function, which nothing uses any more. -#}
        {%- if existing_relation is not none -%}{{ adapter.drop_relation(existing_relation) }}{%- endif -%}
        {% call statement('drop_changed') -%}
            drop function {{ function_name }}() cascade
        {%- endcall %}
        {%- set existing_relation = none -%}
    {%- elif current_key is none and existing_relation is not none -%}
        {#- an older relation of this name (a plain view over the application's tables, a table): replace it -#}
        {{ adapter.drop_relation(existing_relation) }}
        {%- set existing_relation = none -%}
    {%- endif -%}

    {% call statement('function') -%}
        create or replace function {{ function_name }}()
        returns table ({{ signature | join(', ') }})
        language sql
        stable
        as $csinfra_detached$
        select
            {{ select_list | join(',\n            ') }}
        from (
            {{ sql }}
        ) as model
        $csinfra_detached$
    {%- endcall %}

    {{ return(csinfra_replace_view(target_relation, 'select * from ' ~ function_name ~ '()', grant_config, post_hooks,
                                   fingerprint)) }}
{%- endmaterialization -%}
