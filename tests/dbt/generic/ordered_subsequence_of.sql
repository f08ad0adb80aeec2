{#- Fails on rows whose JSON array is not in the catalog's order (each element after the previous one by
    `to`.`order_by`), repeats an element or holds one `to`.`field` lacks: blockers and validation errors
    have a fixed order. -#}
{% test ordered_subsequence_of(model, column_name, to, field, order_by) %}

with

numbered as (
    select
        row_number() over () as row_key,
        model_rows.{{ column_name }} as arr
    from {{ model }} as model_rows
    where jsonb_typeof(model_rows.{{ column_name }}) = 'array'
),

positions as (
    select
        numbered.row_key,
        numbered.arr,
        element.ordinality,
        catalog.{{ order_by }} as catalog_position
    from numbered
    cross join lateral jsonb_array_elements(numbered.arr) with ordinality as element (value, ordinality)
    left join {{ to }} as catalog on catalog.{{ field }}::text = element.value #>> '{}'
),

checked as (
    select
        row_key,
        arr,
        catalog_position,
        lag(catalog_position) over (partition by row_key order by ordinality) as previous_position
    from positions
)

select *
from checked
where catalog_position is null or catalog_position <= previous_position

{% endtest %}
