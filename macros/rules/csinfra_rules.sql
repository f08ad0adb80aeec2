{#- The rule thresholds and weights (dbt_project.yml vars.csinfra_rules): the one place SQL and Python read them
    (the catalogs are seeds: macros/rules/catalogs.sql).
    The numbers the rules render into SQL are checked here (finite, whole where they count cents, days or
    code points); every text (codes, messages, statuses) is rendered through csinfra_quote. -#}
{% macro csinfra_rules() %}
    {%- set r = var('csinfra_rules') -%}
    {%- for cp in r.trim_code_points -%}
        {%- do csinfra_number(cp, 'csinfra_rules.trim_code_points[' ~ loop.index0 ~ ']', 0, 1114111, integer=true) -%}
    {%- endfor -%}
    {%- do csinfra_checked_numbers(r.creator.completeness_weights, 'csinfra_rules.creator.completeness_weights') -%}
    {%- do csinfra_number(r.creator.verified_min_completeness, 'csinfra_rules.creator.verified_min_completeness', 0, 1) -%}
    {%- for name in ['stay_night_value_cents', 'min_total_value_cents', 'min_cash_without_stay_cents', 'max_deliverables',
                     'expiry_days_default', 'expiry_days_min', 'expiry_days_max'] -%}
        {%- do csinfra_number(r.offer[name], 'csinfra_rules.offer.' ~ name, 0, 2147483647, integer=true) -%}
    {%- endfor -%}
    {{ return(r) }}
{% endmacro %}


{#- A regular expression matching one character that trim() would NOT strip: U&'[^\0009\000a…]'. -#}
{% macro non_blank_character_class() -%}
    {%- set parts = [] -%}
    {%- for cp in csinfra_rules().trim_code_points -%}
        {%- do parts.append('\\' ~ ('%04x' | format(cp))) -%}
    {%- endfor -%}
    U&'[^{{ parts | join('') }}]'
{%- endmacro %}


{#- "Blank" (docs/rules.md §4): NULL, empty, or only characters JavaScript's trim() strips.
    Written as "contains no other character", which costs half of btrim() with a 25-character set. -#}
{% macro is_blank(expr) -%}
    (not coalesce({{ expr }} ~ {{ non_blank_character_class() }}, false))
{%- endmacro %}


{#- "Empty list": NULL or zero elements. -#}
{% macro is_empty_list(expr) -%}
    (coalesce(cardinality({{ expr }}), 0) = 0)
{%- endmacro %}


{#- An ISO-8601 text timestamp as TIMESTAMP(3) UTC; NULL (never an error) for anything else.
    Text without an offset is read as UTC, whatever the session's TimeZone. -#}
{% macro safe_iso_timestamp(expr) -%}
    case
        when {{ expr }} !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$'
            or not pg_input_is_valid({{ expr }}, 'timestamptz')
            then null
        when {{ expr }} ~ '(Z|[+-]\d{2}(:?\d{2})?)$'
            then ({{ expr }}::timestamptz at time zone 'UTC')::timestamp(3)
        else {{ expr }}::timestamp(3)
    end
{%- endmacro %}


{#- True when any pair differs (NULL-safe): `a1 is distinct from b1 or a2 is distinct from b2 …`. -#}
{% macro any_distinct(left, right) -%}
    (
        {%- for l in left %}
        {{ l }} is distinct from {{ right[loop.index0] }}{{ ' or' if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}


{#- any_distinct over named columns: `<left_prefix><col> is distinct from <right_prefix><col> or …`. -#}
{% macro columns_differ(columns, left_prefix, right_prefix) -%}
    {%- set left, right = [], [] -%}
    {%- for col in columns -%}
        {%- do left.append(left_prefix ~ col) -%}
        {%- do right.append(right_prefix ~ col) -%}
    {%- endfor -%}
    {{ any_distinct(left, right) }}
{%- endmacro %}


{#- A comma-separated list of SQL string literals, for `in (…)`. -#}
{% macro sql_string_list(values) -%}
    {%- for v in values -%}{{ csinfra_quote(v) }}{{ ', ' if not loop.last }}{%- endfor -%}
{%- endmacro %}
