{#- Fails for every column of the model whose name matches a forbidden pattern (regex, case-insensitive).
    Used to keep secrets, e-mail addresses and IP addresses out of what analysts read. -#}
{% test column_names_exclude(model, patterns) %}
    {{ adapter.dispatch('test_column_names_exclude', 'creatorstays_infra')(model, patterns) }}
{% endtest %}
