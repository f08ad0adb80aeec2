{#- Fails on rows whose JSON column is not an array made only of strings found in `to`.`field` (a catalog seed):
    relationships, for the elements of a JSON array. NULL passes, as in relationships. -#}
{% test json_array_of(model, column_name, to, field) %}
    {{ adapter.dispatch('test_json_array_of', 'creatorstays_infra')(model, column_name, to, field) }}
{% endtest %}
