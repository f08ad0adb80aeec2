{#- Fails for every column of the model whose name matches a forbidden pattern (regex, case-insensitive).
    Used to keep secrets, e-mail addresses and IP addresses out of what analysts read. -#}
{% test column_names_exclude(model, patterns) %}

select
    attname as column_name
from pg_attribute
where
    attrelid = {{ csinfra_quote(model) }}::regclass
    and attnum > 0
    and not attisdropped
    and attname ~* {{ csinfra_quote(patterns | join("|")) }}

{% endtest %}
