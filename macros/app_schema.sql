{#- The application's schema: var('app_schema'), else CSINFRA_APP_SCHEMA, else 'public'. -#}
{% macro csinfra_app_schema() -%}
    {{ return(var('app_schema', env_var('CSINFRA_APP_SCHEMA', 'public'))) }}
{%- endmacro %}
