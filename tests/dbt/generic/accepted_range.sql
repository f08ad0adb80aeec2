{#- Fails on values outside [min_value, max_value] (bounds optional, inclusive unless told), and on NaN. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}

select *
from {{ model }}
where
    {{ column_name }} is not null
    and (
        false
        {%- if min_value is not none %}
            or {{ column_name }} {{ '<' if inclusive else '<=' }} {{ csinfra_number(min_value, 'accepted_range min_value') }}
        {%- endif %}
        {%- if max_value is not none %}
            or {{ column_name }} {{ '>' if inclusive else '>=' }} {{ csinfra_number(max_value, 'accepted_range max_value') }}
        {%- endif %}
        or {{ csinfra_as_text(column_name) }} = 'NaN'
    )

{% endtest %}
