{#- Offer rules (docs/rules.md §5), as SQL expressions over the columns named in `o`:
      o.cash_cents, o.stay_nights, o.stay_value_cents (explicit value or NULL), o.deliverables,
      o.traffic_bonus_enabled, o.traffic_bonus_threshold, o.traffic_bonus_cents
    The Python library implements the same rules from the same constants; a property-based
    test (tests/python/test_offer_rules_property.py) requires both to agree. -#}

{#- The stay value: the explicit value unless it is NULL or 0 (the application's `stayValueCents || estimate`),
    else nights x the nightly value when there are nights, else 0. -#}
{% macro offer_stay_value_cents(o) -%}
    coalesce(
        nullif({{ o.stay_value_cents }}::numeric, 0),
        case when {{ o.stay_nights }} > 0
            then {{ o.stay_nights }}::numeric * {{ csinfra_rules().offer.stay_night_value_cents }}
            else 0
        end
    )
{%- endmacro %}


{#- Exact (numeric) total: cash + stay value. -#}
{% macro offer_total_value(o) -%}
    (coalesce({{ o.cash_cents }}, 0)::numeric + {{ offer_stay_value_cents(o) }})
{%- endmacro %}


{#- The total as stored in "totalValueCents" (INTEGER): NULL when it does not fit. -#}
{% macro offer_total_value_cents(o) -%}
    case
        when {{ offer_total_value(o) }} between -2147483648 and 2147483647
            then {{ offer_total_value(o) }}::integer
    end
{%- endmacro %}


{#- JSON array of error messages, in the specified order. -#}
{% macro offer_validation_errors(o) -%}
    {%- set r = csinfra_rules().offer -%}
    {%- set msg = csinfra_offer_error_messages() -%}
    {%- if not execute -%}{{ return('null') }}{%- endif -%}
    {%- set n_deliverables = 'coalesce(cardinality(' ~ o.deliverables ~ '), 0)' -%}
    {%- set bonus_on = 'coalesce(' ~ o.traffic_bonus_enabled ~ ', false)' -%}
    to_jsonb(array_remove(array[
        case when {{ offer_total_value(o) }} < {{ r.min_total_value_cents }}
            then {{ csinfra_quote(msg.min_total_value) }} end,
        case when coalesce({{ o.stay_nights }}, 0) <= 0 and coalesce({{ o.cash_cents }}, 0) < {{ r.min_cash_without_stay_cents }}
            then {{ csinfra_quote(msg.min_cash_without_stay) }} end,
        case when {{ n_deliverables }} > {{ r.max_deliverables }}
            then {{ csinfra_quote(msg.max_deliverables) }} end,
        case when {{ n_deliverables }} = 0
            then {{ csinfra_quote(msg.no_deliverables) }} end,
        case when {{ bonus_on }} and coalesce({{ o.traffic_bonus_threshold }}, 0) <= 0
            then {{ csinfra_quote(msg.traffic_bonus_threshold) }} end,
        case when {{ bonus_on }} and coalesce({{ o.traffic_bonus_cents }}, 0) <= 0
            then {{ csinfra_quote(msg.traffic_bonus_amount) }} end
    ]::text[], null))
{%- endmacro %}


{#- The explicit stay value recorded in a terms snapshot: an integral JSON number, else NULL. -#}
{% macro snapshot_stay_value_cents(snapshot) -%}
    case
        when jsonb_typeof({{ snapshot }} -> 'stayValueCents') = 'number'
            and ({{ snapshot }} ->> 'stayValueCents')::numeric = trunc(({{ snapshot }} ->> 'stayValueCents')::numeric)
            then ({{ snapshot }} ->> 'stayValueCents')::numeric
    end
{%- endmacro %}
