{#- dbt-utils' unique_combination_of_columns (same name, arguments and semantics): fails for every combination of
    `combination_of_columns` that occurs more than once (a composite primary key). -#}
{% test unique_combination_of_columns(model, combination_of_columns, quote_columns=false) %}

{%- set columns = [] -%}
{%- for column in combination_of_columns -%}
    {%- do columns.append(csinfra_ident(column) if quote_columns else column) -%}
{%- endfor %}
select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
