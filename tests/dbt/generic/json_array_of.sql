{#- Fails on rows whose JSON column is not an array made only of the strings of rule list `rule`. -#}
{% test json_array_of(model, column_name, rule) %}
{%- set values = csinfra_rule_values(rule) %}

select *
from {{ model }}
where
    {{ column_name }} is not null
    and (
        jsonb_typeof({{ column_name }}) <> 'array'
        or exists (
            select
            from jsonb_array_elements({{ column_name }}) as element (value)
            where
                jsonb_typeof(element.value) <> 'string'
                or element.value #>> '{}' not in ({{ sql_string_list(values) }})
        )
    )

{% endtest %}
