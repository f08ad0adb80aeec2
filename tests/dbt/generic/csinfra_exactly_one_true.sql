{#- Fails unless exactly one row has the boolean column true (one row back, with the count, when not). -#}
{% test csinfra_exactly_one_true(model, column_name) %}

select count(*) filter (where {{ column_name }}) as true_rows
from {{ model }}
having count(*) filter (where {{ column_name }}) <> 1

{% endtest %}
