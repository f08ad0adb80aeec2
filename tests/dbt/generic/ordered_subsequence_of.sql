{#- Fails on rows whose JSON array is not in the catalog's order (each element after the previous one by
    `to`.`order_by`), repeats an element or holds one `to`.`field` lacks: blockers and validation errors
    have a fixed order. -#}
{% test ordered_subsequence_of(model, column_name, to, field, order_by) %}
    {{ adapter.dispatch('test_ordered_subsequence_of', 'creatorstays_infra')(model, column_name, to, field, order_by) }}
{% endtest %}
