{#- The SQL dialect gaps between PostgreSQL (the application's database, where everything builds) and Spark SQL
    (where the marts build from the lake): one macro per construct, dispatched on the adapter, so every model
    keeps one SQL text. PostgreSQL's spelling is the default. -#}

{#- The text of key `key` of a JSON object (NULL when absent or not an object): PostgreSQL `->>`. -#}
{% macro csinfra_json_text(expr, key) -%}
    {{ return(adapter.dispatch('csinfra_json_text', 'creatorstays_infra')(expr, key)) }}
{%- endmacro %}

{% macro default__csinfra_json_text(expr, key) -%}
    ({{ expr }} ->> {{ csinfra_quote(key) }})
{%- endmacro %}

{% macro spark__csinfra_json_text(expr, key) -%}
    get_json_object({{ expr }}, {{ csinfra_quote('$.' ~ key) }})
{%- endmacro %}


{#- The row version the write-back guards its updates with (PostgreSQL's xmin); the lake has none. -#}
{% macro csinfra_row_version(alias) -%}
    {{ return(adapter.dispatch('csinfra_row_version', 'creatorstays_infra')(alias)) }}
{%- endmacro %}

{% macro default__csinfra_row_version(alias) -%}
    {{ alias }}.xmin
{%- endmacro %}

{% macro spark__csinfra_row_version(alias) -%}
    cast(null as bigint)
{%- endmacro %}


{#- Exact decimal arithmetic for a ratio or a rounding: PostgreSQL's numeric (arbitrary precision); on Spark a
    decimal wide enough for the marts' values (a bare `decimal` there has no fractional digits). -#}
{% macro csinfra_numeric(expr) -%}
    {{ return(adapter.dispatch('csinfra_numeric', 'creatorstays_infra')(expr)) }}
{%- endmacro %}

{% macro default__csinfra_numeric(expr) -%}
    ({{ expr }})::numeric
{%- endmacro %}

{% macro spark__csinfra_numeric(expr) -%}
    cast({{ expr }} as decimal(38, 12))
{%- endmacro %}


{#- A UTC timestamp without time zone, to milliseconds, from a 'YYYY-MM-DD[ HH:MI:SS]' literal or (none) now. -#}
{% macro csinfra_utc_timestamp(literal=none) -%}
    {{ return(adapter.dispatch('csinfra_utc_timestamp', 'creatorstays_infra')(literal)) }}
{%- endmacro %}

{% macro default__csinfra_utc_timestamp(literal=none) -%}
    {%- if literal is not none -%}{{ csinfra_quote(literal) }}::timestamp(3){%- else -%}(now() at time zone 'UTC')::timestamp(3){%- endif -%}
{%- endmacro %}

{% macro spark__csinfra_utc_timestamp(literal=none) -%}
    {%- if literal is not none -%}cast({{ csinfra_quote(literal) }} as timestamp_ntz){%- else -%}cast(date_trunc('millisecond', current_timestamp()) as timestamp_ntz){%- endif -%}
{%- endmacro %}


{#- Seconds from one timestamp (without time zone) to another, exactly (to the microsecond). -#}
{% macro csinfra_seconds_between(from_ts, to_ts) -%}
    {{ return(adapter.dispatch('csinfra_seconds_between', 'creatorstays_infra')(from_ts, to_ts)) }}
{%- endmacro %}

{% macro default__csinfra_seconds_between(from_ts, to_ts) -%}
    extract(epoch from ({{ to_ts }} - {{ from_ts }}))
{%- endmacro %}

{% macro spark__csinfra_seconds_between(from_ts, to_ts) -%}
    (cast(unix_micros(cast({{ to_ts }} as timestamp)) - unix_micros(cast({{ from_ts }} as timestamp)) as decimal(38, 12)) / 1000000)
{%- endmacro %}


{#- An interval literal ('3 days', '12 hours'), already checked. -#}
{% macro csinfra_interval_literal(text) -%}
    {{ return(adapter.dispatch('csinfra_interval_literal', 'creatorstays_infra')(text)) }}
{%- endmacro %}

{% macro default__csinfra_interval_literal(text) -%}
    {{ csinfra_quote(text) }}::interval
{%- endmacro %}

{% macro spark__csinfra_interval_literal(text) -%}
    interval {{ csinfra_quote(text) }}
{%- endmacro %}


{#- The earliest timestamp, for "nothing seen yet". -#}
{% macro csinfra_timestamp_min() -%}
    {{ return(adapter.dispatch('csinfra_timestamp_min', 'creatorstays_infra')()) }}
{%- endmacro %}

{% macro default__csinfra_timestamp_min() -%}
    '-infinity'::timestamp
{%- endmacro %}

{% macro spark__csinfra_timestamp_min() -%}
    cast('1000-01-01 00:00:00' as timestamp_ntz)
{%- endmacro %}


{#- The length of a JSON array (NULL when the value is not an array). -#}
{% macro csinfra_json_array_length(expr) -%}
    {{ return(adapter.dispatch('csinfra_json_array_length', 'creatorstays_infra')(expr)) }}
{%- endmacro %}

{% macro default__csinfra_json_array_length(expr) -%}
    jsonb_array_length({{ expr }})
{%- endmacro %}

{% macro spark__csinfra_json_array_length(expr) -%}
    json_array_length({{ expr }})
{%- endmacro %}


{#- True when the JSON value is an array with at least one element. -#}
{% macro csinfra_json_is_nonempty_array(expr) -%}
    {{ return(adapter.dispatch('csinfra_json_is_nonempty_array', 'creatorstays_infra')(expr)) }}
{%- endmacro %}

{% macro default__csinfra_json_is_nonempty_array(expr) -%}
    (jsonb_typeof({{ expr }}) = 'array' and {{ expr }} <> '[]'::jsonb)
{%- endmacro %}

{% macro spark__csinfra_json_is_nonempty_array(expr) -%}
    coalesce(json_array_length({{ expr }}) > 0, false)
{%- endmacro %}


{#- A join clause: one row per element of a JSON array, as `alias.value` (each element's JSON; its text when
    `as_text`) and `alias.position` (1, 2, … in array order: read it with csinfra_json_position). -#}
{% macro csinfra_json_elements(expr, alias, as_text=false) -%}
    {{ return(adapter.dispatch('csinfra_json_elements', 'creatorstays_infra')(expr, alias, as_text)) }}
{%- endmacro %}

{% macro default__csinfra_json_elements(expr, alias, as_text=false) -%}
    cross join lateral {{ 'jsonb_array_elements_text' if as_text else 'jsonb_array_elements' }}({{ expr }})
        with ordinality as {{ alias }} (value, position)
{%- endmacro %}

{% macro spark__csinfra_json_elements(expr, alias, as_text=false) -%}
    cross join lateral posexplode(from_json({{ expr }}, 'array<string>')) as {{ alias }} (position, value)
{%- endmacro %}


{#- The 1-based position of an element from csinfra_json_elements. -#}
{% macro csinfra_json_position(alias) -%}
    {{ return(adapter.dispatch('csinfra_json_position', 'creatorstays_infra')(alias)) }}
{%- endmacro %}

{% macro default__csinfra_json_position(alias) -%}
    {{ alias }}.position::integer
{%- endmacro %}

{% macro spark__csinfra_json_position(alias) -%}
    cast({{ alias }}.position + 1 as integer)
{%- endmacro %}


{#- The value of the first row by `order_by` (a list of expressions, ascending, NULLs last), among the rows
    matching `where` (an aggregate). -#}
{% macro csinfra_first_by(value, order_by, where=none) -%}
    {{ return(adapter.dispatch('csinfra_first_by', 'creatorstays_infra')(value, order_by, where)) }}
{%- endmacro %}

{% macro default__csinfra_first_by(value, order_by, where=none) -%}
    (array_agg({{ value }} order by {{ order_by | join(', ') }}){% if where %} filter (where {{ where }}){% endif %})[1]
{%- endmacro %}

{% macro spark__csinfra_first_by(value, order_by, where=none) -%}
    {%- set keys = [] -%}
    {%- for e in order_by -%}{%- do keys.extend(["'k" ~ loop.index ~ "n'", '(' ~ e ~ ') is null', "'k" ~ loop.index ~ "'", e]) -%}{%- endfor -%}
    min_by({{ value }}, named_struct({{ keys | join(', ') }})){% if where %} filter (where {{ where }}){% endif %}
{%- endmacro %}


{#- One row per day from `start_date` to `end_date` (dates, both included), as column `name`: a FROM-able query. -#}
{% macro csinfra_day_series(start_date, end_date, name) -%}
    {{ return(adapter.dispatch('csinfra_day_series', 'creatorstays_infra')(start_date, end_date, name)) }}
{%- endmacro %}

{% macro default__csinfra_day_series(start_date, end_date, name) -%}
    generate_series({{ start_date }}, {{ end_date }}, interval '1 day')::date as {{ name }}
{%- endmacro %}

{% macro spark__csinfra_day_series(start_date, end_date, name) -%}
    explode(sequence({{ start_date }}, {{ end_date }}, interval 1 day)) as {{ name }}
{%- endmacro %}


{#- A text in ISO-8601 as a UTC timestamp without time zone, NULL for anything else (never an error). -#}
{% macro csinfra_parse_iso_timestamp(expr) -%}
    {{ return(adapter.dispatch('csinfra_parse_iso_timestamp', 'creatorstays_infra')(expr)) }}
{%- endmacro %}

{% macro default__csinfra_parse_iso_timestamp(expr) -%}
    {{ safe_iso_timestamp(expr) }}
{%- endmacro %}

{% macro spark__csinfra_parse_iso_timestamp(expr) -%}
    case
        when {{ expr }} rlike '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$'
            then cast(date_trunc('millisecond', try_to_timestamp({{ expr }})) as timestamp_ntz)
    end
{%- endmacro %}


{#- The event models' materialization: incremental on PostgreSQL; rebuilt whole on Spark, where the lake's
    parquet tables have no MERGE or DELETE (day-partitioned insert_overwrite is the next step there). -#}
{% macro csinfra_events_materialization() -%}
    {{ return('table' if target.type == 'spark' else 'incremental') }}
{%- endmacro %}
