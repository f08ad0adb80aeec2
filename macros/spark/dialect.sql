{#- The SQL dialect gaps between PostgreSQL (the application's database, where everything builds) and Spark SQL
    (where the marts build from the lake): one macro per construct, dispatched on the adapter, so every model
    keeps one SQL text. PostgreSQL's spelling is the default. -#}

{#- Spark's string literal: backslash and ' escaped with a backslash (Spark reads backslash escapes in literals);
    NUL is refused, as on PostgreSQL. -#}
{% macro spark__csinfra_quote(value) -%}
    {%- set text = value | string -%}
    {%- if '\x00' in text -%}
        {{ exceptions.raise_compiler_error("[csinfra] a SQL literal cannot contain a NUL character: " ~ (text | replace('\x00', '\\0'))) }}
    {%- endif -%}
    '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}


{#- Spark's quoted identifier: `…` with embedded ` doubled. Empty or NUL is refused. -#}
{% macro spark__csinfra_ident(name) -%}
    {%- set text = name | string -%}
    {%- if '\x00' in text or text | length == 0 -%}
        {{ exceptions.raise_compiler_error("[csinfra] not a SQL identifier: " ~ (text | tojson)) }}
    {%- endif -%}
    `{{ text | replace('`', '``') }}`
{%- endmacro %}


{#- Any value as text: PostgreSQL `::text`. -#}
{% macro csinfra_as_text(expr) -%}
    {{ return(adapter.dispatch('csinfra_as_text', 'creatorstays_infra')(expr)) }}
{%- endmacro %}

{% macro default__csinfra_as_text(expr) -%}
    {{ expr }}::text
{%- endmacro %}

{% macro spark__csinfra_as_text(expr) -%}
    cast({{ expr }} as string)
{%- endmacro %}


{#- True when the text matches the regular expression `pattern` (a literal, any position): PostgreSQL `~` (`~*`
    when case_insensitive); Spark's rlike (Java regular expressions, `(?i)` when case_insensitive). -#}
{% macro csinfra_regex_matches(expr, pattern, case_insensitive=false) -%}
    {{ return(adapter.dispatch('csinfra_regex_matches', 'creatorstays_infra')(expr, pattern, case_insensitive)) }}
{%- endmacro %}

{% macro default__csinfra_regex_matches(expr, pattern, case_insensitive=false) -%}
    {{ expr }} {{ '~*' if case_insensitive else '~' }} {{ csinfra_quote(pattern) }}
{%- endmacro %}

{% macro spark__csinfra_regex_matches(expr, pattern, case_insensitive=false) -%}
    {{ expr }} rlike {{ csinfra_quote(('(?i)' if case_insensitive else '') ~ pattern) }}
{%- endmacro %}


{#- A JSON literal to compare a JSON column with: PostgreSQL `'…'::jsonb`; on Spark the text itself, as the lake
    holds PostgreSQL's canonical jsonb text (write the literal canonically: `[]`, `["a", "b"]`). -#}
{% macro csinfra_json_literal(text) -%}
    {{ return(adapter.dispatch('csinfra_json_literal', 'creatorstays_infra')(text)) }}
{%- endmacro %}

{% macro default__csinfra_json_literal(text) -%}
    {{ csinfra_quote(text) }}::jsonb
{%- endmacro %}

{% macro spark__csinfra_json_literal(text) -%}
    {{ csinfra_quote(text) }}
{%- endmacro %}


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


{#- An event model's incremental strategy: `postgres_strategy` on PostgreSQL (delete+insert or append, by its
    unique key); on Spark, whose Parquet tables have neither MERGE nor DELETE, insert_overwrite of whole day
    partitions (dynamic partition overwrite: only the partitions the run's rows fall in are replaced). -#}
{% macro csinfra_events_strategy(postgres_strategy) -%}
    {{ return(adapter.dispatch('csinfra_events_strategy', 'creatorstays_infra')(postgres_strategy)) }}
{%- endmacro %}

{% macro default__csinfra_events_strategy(postgres_strategy) -%}
    {{ return(postgres_strategy) }}
{%- endmacro %}

{% macro spark__csinfra_events_strategy(postgres_strategy) -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}


{#- An event model's Spark-only configuration, for `config(**…)`: a Parquet table partitioned by its day column
    `day_column` (csinfra_events_day_column), and, when `moved_key` (the key columns) is given, the post-hook that
    drops the partitions a run emptied (csinfra_drop_moved_partitions, on `moved_time`). Nothing on PostgreSQL,
    whose configuration stays as it is. -#}
{% macro csinfra_events_partitioning(day_column, moved_key=none, moved_time=none) -%}
    {{ return(adapter.dispatch('csinfra_events_partitioning', 'creatorstays_infra')(day_column, moved_key, moved_time)) }}
{%- endmacro %}

{% macro default__csinfra_events_partitioning(day_column, moved_key=none, moved_time=none) -%}
    {{ return({}) }}
{%- endmacro %}

{% macro spark__csinfra_events_partitioning(day_column, moved_key=none, moved_time=none) -%}
    {%- set partitioning = {'partition_by': [day_column], 'file_format': 'parquet'} -%}
    {%- if moved_key -%}
        {%- do partitioning.update({'post_hook': [
            '{{ csinfra_drop_moved_partitions(' ~ (moved_key | tojson) ~ ', ' ~ (moved_time | tojson) ~ ', '
            ~ (day_column | tojson) ~ ') }}']}) -%}
    {%- endif -%}
    {{ return(partitioning) }}
{%- endmacro %}


{#- An event model's day partition column on Spark, appended after its last column: `, cast(<expr> as date) as
    <name>`. Nothing on PostgreSQL, whose tables keep exactly their columns. -#}
{% macro csinfra_events_day_column(expr, name) -%}
    {{ return(adapter.dispatch('csinfra_events_day_column', 'creatorstays_infra')(expr, name)) }}
{%- endmacro %}

{% macro default__csinfra_events_day_column(expr, name) -%}
    {{ return('') }}
{%- endmacro %}

{% macro spark__csinfra_events_day_column(expr, name) -%}
    ,
        cast({{ expr }} as date) as {{ name }}
{%- endmacro %}


{#- True where an incremental run replaces whole day partitions (Spark's insert_overwrite), so an event model
    recomputes every row of each day it rewrites; false on PostgreSQL, which replaces rows by key. -#}
{% macro csinfra_events_overwrite_days() -%}
    {{ return(adapter.dispatch('csinfra_events_overwrite_days', 'creatorstays_infra')()) }}
{%- endmacro %}

{% macro default__csinfra_events_overwrite_days() -%}
    {{ return(false) }}
{%- endmacro %}

{% macro spark__csinfra_events_overwrite_days() -%}
    {{ return(true) }}
{%- endmacro %}


{#- Post-hook on Spark of an event model whose rows can move to an earlier day partition (a late event makes a
    milestone's first time earlier): insert_overwrite replaces only the partitions the run's rows fall in, so a
    partition whose every row moved keeps its old rows. Such a row is a key (`key_columns`) held twice, the copy
    with the later `time_column` being the stale one; each partition (`day_column`) holding only stale rows is
    dropped, and one holding stale rows beside current ones stops the run (it cannot happen: a partition with a
    current row was rewritten). -#}
{% macro csinfra_drop_moved_partitions(key_columns, time_column, day_column) -%}
    {%- if not execute or not is_incremental() -%}{{ return('') }}{%- endif -%}
    {%- set held -%}
        select
            {{ day_column }} as day_partition,
            count(*) as held_rows,
            count_if({{ time_column }} > earliest) as stale_rows
        from (
            select
                {{ day_column }},
                {{ time_column }},
                min({{ time_column }}) over (partition by {{ key_columns | join(', ') }}) as earliest
            from {{ this }}
        ) as held
        group by {{ day_column }}
        having count_if({{ time_column }} > earliest) > 0
    {%- endset -%}
    {%- for row in run_query(held).rows -%}
        {%- if row[1] != row[2] -%}
            {{ exceptions.raise_compiler_error("[csinfra] " ~ this ~ ": partition " ~ row[0] ~ " holds "
               ~ row[2] ~ " stale rows beside " ~ (row[1] - row[2]) ~ " current ones") }}
        {%- endif -%}
        {%- do run_query('alter table ' ~ this ~ ' drop if exists partition (' ~ day_column ~ ' = '
                         ~ csinfra_quote(row[0] | string) ~ ')') -%}
        {%- do log("[csinfra] " ~ this ~ ": dropped partition " ~ day_column ~ "=" ~ row[0] ~ ", whose "
                   ~ row[1] ~ " rows moved to an earlier day", info=true) -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}


{#- On Spark an incremental run of an event model overwrites whole day partitions, so it re-reads every event of
    each day from the one holding the newest event seen minus var events_lookback, whatever `whole_days` says. -#}
{% macro spark__incremental_events_filter(created_at, watermark_column, whole_days=false) -%}
    {%- if is_incremental() -%}
        {{ created_at }} >= date_trunc('day', {{ incremental_events_since(watermark_column) }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- On Spark, every row of a day partition an incremental run rewrites is emitted again, seen or not: `true`. -#}
{% macro spark__incremental_not_seen(key_expr, this_key) -%}
    true
{%- endmacro %}
