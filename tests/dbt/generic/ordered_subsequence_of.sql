{#- Fails on rows whose JSON array is not in the configured order (each element after the previous
    one in rule list `rule`), repeats an element or holds an unknown one: blockers and validation errors
    have a fixed order. -#}
{% test ordered_subsequence_of(model, column_name, rule) %}
{%- set values = csinfra_rule_values(rule) %}

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
        array_position(array[{{ sql_string_list(values) }}]::text[], element.value #>> '{}') as rule_position
    from numbered
    cross join lateral jsonb_array_elements(numbered.arr) with ordinality as element (value, ordinality)
),

checked as (
    select
        row_key,
        arr,
        rule_position,
        lag(rule_position) over (partition by row_key order by ordinality) as previous_position
    from positions
)

select *
from checked
where rule_position is null or rule_position <= previous_position

{% endtest %}
