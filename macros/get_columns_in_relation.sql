{#- dbt-postgres reports array columns as data type "ARRAY" and enums as "USER-DEFINED", types that
    cannot be cast to (unit-test fixtures, contracts). Report them as PostgreSQL spells them
    (text[], "public"."TrustTier"); every other column as dbt-postgres does. -#}
{% macro postgres__get_columns_in_relation(relation) -%}
    {% call statement('get_columns_in_relation', fetch_result=True) %}
        select
            column_name,
            case
                when data_type = 'ARRAY' and udt_name like '\_%' then substr(udt_name, 2) || '[]'
                when data_type = 'USER-DEFINED' then quote_ident(udt_schema) || '.' || quote_ident(udt_name)
                else data_type
            end as data_type,
            character_maximum_length,
            numeric_precision,
            numeric_scale
        from {{ relation.information_schema('columns') }}
        where table_name = {{ csinfra_quote(relation.identifier) }}
            {% if relation.schema %}
            and table_schema = {{ csinfra_quote(relation.schema) }}
            {% endif %}
        order by ordinal_position
    {% endcall %}
    {% set table = load_result('get_columns_in_relation').table %}
    {{ return(sql_convert_columns_in_relation(table)) }}
{%- endmacro %}
