{#- Relations render as schema.name, never database.schema.name: PostgreSQL cannot reference another
    database anyway, and the rule functions dbt installs (their bodies are text) must keep working
    in a database that is renamed or cloned from a template. -#}
{% macro ref() -%}
    {%- set relation = builtins.ref(*varargs, **kwargs) -%}
    {%- if relation is not none and relation.include is defined -%}
        {{ return(relation.include(database=False)) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{% macro source() -%}
    {%- set relation = builtins.source(*varargs, **kwargs) -%}
    {%- if relation is not none and relation.schema is defined -%}
        {%- do csinfra_schema_name(relation.schema, 'app_schema (var app_schema / CSINFRA_APP_SCHEMA)') -%}
    {%- endif -%}
    {%- if relation is not none and relation.include is defined -%}
        {{ return(relation.include(database=False)) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
