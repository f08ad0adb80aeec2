{#- The application's schema: var('app_schema'), else CSINFRA_APP_SCHEMA, else 'public'; a plain schema
    name or the run stops (the sources, our macros and dbt's own relation names all use it). -#}
{% macro csinfra_app_schema() -%}
    {{ return(csinfra_schema_name(var('app_schema', env_var('CSINFRA_APP_SCHEMA', 'public')), 'app_schema (var app_schema / CSINFRA_APP_SCHEMA)')) }}
{%- endmacro %}
