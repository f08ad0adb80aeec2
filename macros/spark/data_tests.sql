{#- The generic tests (tests/dbt/generic/) whose SQL differs between PostgreSQL and Spark: each test dispatches to
    default__test_<name> (PostgreSQL's SQL) or spark__test_<name> here; the others are written once, through the
    dialect macros of dialect.sql. -#}


{#- column_names_exclude on PostgreSQL: the model's columns from the catalog (pg_attribute). -#}
{% macro default__test_column_names_exclude(model, patterns) %}

select
    attname as column_name
from pg_attribute
where
    attrelid = {{ csinfra_quote(model) }}::regclass
    and attnum > 0
    and not attisdropped
    and attname ~* {{ csinfra_quote(patterns | join("|")) }}

{% endmacro %}


{#- column_names_exclude on Spark: the model's columns as the metastore describes them, matched in SQL. -#}
{% macro spark__test_column_names_exclude(model, patterns) %}
    {%- set names = [] -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(model) -%}
            {%- do names.append('(' ~ csinfra_quote(column.name) ~ ')') -%}
        {%- endfor -%}
    {%- endif %}
    {%- if names | length == 0 %}
select cast(null as string) as column_name where false
    {%- else %}
select column_name
from (values {{ names | join(', ') }}) as model_columns (column_name)
where {{ csinfra_regex_matches('column_name', patterns | join('|'), case_insensitive=true) }}
    {%- endif %}

{% endmacro %}


{#- json_array_of on PostgreSQL (jsonb). -#}
{% macro default__test_json_array_of(model, column_name, to, field) %}

select model_rows.*
from {{ model }} as model_rows
where
    model_rows.{{ column_name }} is not null
    and (
        jsonb_typeof(model_rows.{{ column_name }}) <> 'array'
        or exists (
            select
            from jsonb_array_elements(model_rows.{{ column_name }}) as element (value)
            where
                jsonb_typeof(element.value) <> 'string'
                or not exists (
                    select from {{ to }} as catalog
                    where catalog.{{ field }}::text = element.value #>> '{}'
                )
        )
    )

{% endmacro %}


{#- json_array_of on Spark, where the column is JSON text: not an array (json_array_length NULL), or an element
    (read as text: a number or an object reads as its JSON text, which no catalog value is) not in the catalog. -#}
{% macro spark__test_json_array_of(model, column_name, to, field) %}

with

elements as (
    select
        model_rows.{{ column_name }} as arr,
        element.value
    from {{ model }} as model_rows
    {{ csinfra_json_elements('model_rows.' ~ column_name, 'element', as_text=true) }}
),

offending as (
    select distinct elements.arr
    from elements
    left join {{ to }} as catalog on cast(catalog.{{ field }} as string) = elements.value
    where elements.value is null or catalog.{{ field }} is null
)

select model_rows.*
from {{ model }} as model_rows
where
    model_rows.{{ column_name }} is not null
    and (
        json_array_length(model_rows.{{ column_name }}) is null
        or model_rows.{{ column_name }} in (select offending.arr from offending)
    )

{% endmacro %}


{#- ordered_subsequence_of on PostgreSQL (jsonb). -#}
{% macro default__test_ordered_subsequence_of(model, column_name, to, field, order_by) %}

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

{% endmacro %}


{#- ordered_subsequence_of on Spark, where the column is JSON text (its elements read as text). -#}
{% macro spark__test_ordered_subsequence_of(model, column_name, to, field, order_by) %}

with

numbered as (
    select
        monotonically_increasing_id() as row_key,
        model_rows.{{ column_name }} as arr
    from {{ model }} as model_rows
    where json_array_length(model_rows.{{ column_name }}) is not null
),

positions as (
    select
        numbered.row_key,
        numbered.arr,
        {{ csinfra_json_position('element') }} as ordinality,
        catalog.{{ order_by }} as catalog_position
    from numbered
    {{ csinfra_json_elements('numbered.arr', 'element', as_text=true) }}
    left join {{ to }} as catalog on cast(catalog.{{ field }} as string) = element.value
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

{% endmacro %}
