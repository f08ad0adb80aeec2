{#- Fails on rows whose JSON column is not an array made only of strings found in `to`.`field` (a catalog seed):
    relationships, for the elements of a JSON array. NULL passes, as in relationships. -#}
{% test json_array_of(model, column_name, to, field) %}

select model_rows.*
from {{ model }} as model_rows
where
    model_rows.{{ column_name }} is not null
    and (
        jsonb_typeof(model_rows.{{ column_name }}) <> 'array'
        or exists (
            select
            from jsonb_array_elements(model_rows.{{ column_name }}) as element (value)
            where
                jsonb_typeof(element.value) <> 'string'
                or not exists (
                    select from {{ to }} as catalog
                    where catalog.{{ field }}::text = element.value #>> '{}'
                )
        )
    )

{% endtest %}
