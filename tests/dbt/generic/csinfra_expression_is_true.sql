{#- Fails on every row where `expression` is not true. Unlike dbt-utils' expression_is_true (hence our prefix), a
    NULL result fails too: an invariant that cannot be evaluated does not hold. On a column, as in dbt-utils, the
    expression is applied to it: `<column> <expression>` (say `expression: ">= 0"`). -#}
{% test csinfra_expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ column_name ~ ' ' if column_name is not none else '' }}{{ expression }}), false)

{% endtest %}
