{#- on-run-start, on Spark: every source table as a view over its Parquet files in the lake (csinfra lake export),
    so source() resolves there as it does on PostgreSQL. The lake is env var CSINFRA_LAKE_DIR (an absolute path
    or URI: file:///…, s3a://…, abfss://…). Event tables are partitioned by day (created_date=YYYY-MM-DD), which
    Spark discovers. On PostgreSQL, nothing. -#}
{% macro csinfra_lake_sources() %}
    {{ return(adapter.dispatch('csinfra_lake_sources', 'creatorstays_infra')()) }}
{% endmacro %}

{% macro default__csinfra_lake_sources() %}
    {{ return('') }}
{% endmacro %}

{% macro spark__csinfra_lake_sources() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set lake = env_var('CSINFRA_LAKE_DIR', '') -%}
    {%- if not lake -%}
        {{ exceptions.raise_compiler_error("[csinfra] set CSINFRA_LAKE_DIR to the lake `csinfra lake export` wrote") }}
    {%- endif -%}
    {%- if '`' in lake -%}
        {{ exceptions.raise_compiler_error("[csinfra] CSINFRA_LAKE_DIR must not contain a backtick") }}
    {%- endif -%}
    {%- set schemas = [] -%}
    {%- for source in graph.sources.values() if source.package_name == project_name -%}
        {%- if source.schema not in schemas -%}
            {%- do run_query('create database if not exists ' ~ csinfra_schema_name(source.schema, 'app_schema')) -%}
            {%- do schemas.append(source.schema) -%}
        {%- endif -%}
        {%- do run_query('create or replace view ' ~ source.schema ~ '.' ~ source.identifier
                         ~ ' as select * from parquet.`' ~ lake.rstrip('/') ~ '/' ~ source.identifier ~ '`') -%}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}


{#- Staging on Spark: plain views (detached_view is PostgreSQL's answer to the application's own migrations, which
    the lake does not have). The application's columns are camelCase, quoted the PostgreSQL way ("cashCents") in
    the staging models; Spark quotes identifiers with backticks, so the view's SQL has its double-quoted
    identifiers rewritten (staging quotes nothing else with double quotes). -#}
{% materialization detached_view, adapter='spark' %}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set spark_sql = modules.re.sub('"([A-Za-z_][A-Za-z0-9_]*)"', '`\\1`', sql) -%}
    {{ run_hooks(pre_hooks) }}
    {% call statement('main') -%}
        {{ get_create_view_as_sql(target_relation, spark_sql) }}
    {%- endcall %}
    {% do persist_docs(target_relation, model, for_relation=false) %}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- Spark (local mode, or a cluster without a catalog that grants): no GRANT statements, and no SHOW GRANTS to
    diff them against. The analysts' access to the lake's tables is the storage's and the metastore's. -#}
{% macro spark__apply_grants(relation, grant_config, should_revoke=True) %}
    {{ return('') }}
{% endmacro %}
