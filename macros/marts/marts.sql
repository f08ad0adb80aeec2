{#- The moment the marts describe: var marts_as_of (UTC), else the current time in UTC. -#}
{% macro marts_as_of() -%}
    {%- set as_of = var('marts_as_of', none) -%}
    {{- csinfra_utc_timestamp(as_of if as_of else none) -}}
{%- endmacro %}


{#- Hours from one timestamp to another, 2 decimals (NULL when either is NULL). -#}
{% macro hours_between(from_ts, to_ts) -%}
    round({{ csinfra_numeric(csinfra_seconds_between(from_ts, to_ts) ~ ' / 3600') }}, 2)
{%- endmacro %}


{#- Days from one timestamp to another, 2 decimals (NULL when either is NULL). -#}
{% macro days_between(from_ts, to_ts) -%}
    round({{ csinfra_numeric(csinfra_seconds_between(from_ts, to_ts) ~ ' / 86400') }}, 2)
{%- endmacro %}


{#- In an incremental run, the createdAt from which source events are re-read: the model's watermark (the max of
    `watermark_column` over the model: the newest event it has seen, or for the funnel milestones the newest
    first-recorded time) minus var events_lookback. -#}
{% macro incremental_events_since(watermark_column) -%}
    (
        select coalesce(max({{ watermark_column }}), {{ csinfra_timestamp_min() }})
            - {{ csinfra_interval_literal(csinfra_interval(var('events_lookback'), 'var events_lookback')) }}
        from {{ this }}
    )
{%- endmacro %}


{#- How many rows reached `step_at` within `window_days` of `start_at`; NULL while the cohort (starting at
    `cohort_start`, 7 days long) is not mature, i.e. its last member has not yet had the whole window
    by marts_as_of. -#}
{% macro windowed_count(step_at, start_at, window_days, cohort_start) -%}
    {%- set window_days = csinfra_number(window_days, 'window of ' ~ step_at ~ ' (days)', 0, 36500, integer=true) -%}
    case
        when {{ cohort_start }} + interval '7 days' + interval '{{ window_days }} days' <= {{ marts_as_of() }}
            then count(*) filter (where {{ step_at }} < {{ start_at }} + interval '{{ window_days }} days')
    end
{%- endmacro %}


{#- numerator / denominator rounded to 4 decimals; NULL when either is NULL or the denominator 0. -#}
{% macro safe_ratio(numerator, denominator) -%}
    round({{ csinfra_numeric(numerator) }} / nullif({{ denominator }}, 0), 4)
{%- endmacro %}


{#- SET LOCAL work_mem for the model's transaction (var marts_work_mem, e.g. '256MB'), so big sorts and
    hash joins of the marts stay in memory. Validated: a number and a unit, nothing else. -#}
{% macro csinfra_set_work_mem() -%}
    {%- if target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    {%- set value = var('marts_work_mem', '256MB') | string -%}
    {%- if not modules.re.fullmatch('^[0-9]{1,9} ?(kB|MB|GB)$', value) -%}
        {{ exceptions.raise_compiler_error("[csinfra] var marts_work_mem: expected a size like '256MB', got " ~ (value | tojson)) }}
    {%- endif -%}
    set local work_mem = {{ csinfra_quote(value) }}
{%- endmacro %}


{#- Post-hook of the marts (dbt_project.yml): a mart materialized as a table, rebuilt whole at every build, is analyzed
    at once and never autovacuumed. Autovacuum would only process a table that the next build replaces, and it holds
    the lock the replacement's rename needs: the next build would wait deadlock_timeout (1 s by default) before
    PostgreSQL cancels the vacuum (measured on rpt_creator_search_ranking, 1,000,000 rows, built again right after a
    full build). The table is never updated, so it has nothing to vacuum; ANALYZE gives analysts' queries the
    statistics autovacuum would have. Nothing for the incremental marts (they are updated in place) or on Spark. -#}
{% macro csinfra_rebuilt_table_upkeep() -%}
    {%- if target.type != 'postgres' or config.get('materialized') != 'table' -%}{{ return('') }}{%- endif -%}
    alter table {{ this }} set (autovacuum_enabled = false);
    analyze {{ this }}
{%- endmacro %}


{#- The incremental filter of an event model: `<created_at> >= <newest seen - lookback>` (from the start of
    that day when whole_days) in an incremental run, `true` in a full build. One line either way, so
    the model reads (and lints) the same in both. Dispatched: on Spark, whose incremental runs overwrite whole day
    partitions, always from the start of the day. -#}
{% macro incremental_events_filter(created_at, watermark_column, whole_days=false) -%}
    {{ return(adapter.dispatch('incremental_events_filter', 'creatorstays_infra')(created_at, watermark_column, whole_days)) }}
{%- endmacro %}

{% macro default__incremental_events_filter(created_at, watermark_column, whole_days=false) -%}
    {%- if is_incremental() -%}
        {%- if whole_days -%}
            {{ created_at }} >= date_trunc('day', {{ incremental_events_since(watermark_column) }})
        {%- else -%}
            {{ created_at }} >= {{ incremental_events_since(watermark_column) }}
        {%- endif -%}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- In an incremental run: the row (by `key_expr`) is not in the model yet; `true` in a full build. Dispatched: on
    Spark always `true` (a rewritten day partition needs every row of the day again). -#}
{% macro incremental_not_seen(key_expr, this_key) -%}
    {{ return(adapter.dispatch('incremental_not_seen', 'creatorstays_infra')(key_expr, this_key)) }}
{%- endmacro %}

{% macro default__incremental_not_seen(key_expr, this_key) -%}
    {%- if is_incremental() -%}
        not exists (select 1 from {{ this }} as seen where seen.{{ this_key }} = {{ key_expr }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- The search-ranking signal's weighted sum of the components other than recent views (var
    search_ranking.weights): the part of the score kept per creator (int_creator_search_components). -#}
{% macro csinfra_search_partial_score(trust_tier_score, completeness_score, completed_collabs_score) -%}
    {%- set weights = csinfra_number_var('search_ranking').weights -%}
    {{ weights.trust_tier }} * {{ trust_tier_score }}
    + {{ weights.completeness }} * {{ completeness_score }}
    + {{ weights.completed_collabs }} * {{ completed_collabs_score }}
{%- endmacro %}


{#- The search score, in [0, 1]: the weighted sum of the components (the partial sum of
    csinfra_search_partial_score plus the weighted recent-views score) over the sum of the weights, 6 decimals.
    The one definition of the score: the per-creator score without views and the ranking's score both use it. -#}
{% macro csinfra_search_score(partial_score, recent_views_score) -%}
    {%- set weights = csinfra_number_var('search_ranking').weights -%}
    round(
        ({{ partial_score }} + {{ weights.recent_views }} * {{ recent_views_score }}) / {{ weights.values() | sum }},
        6
    )
{%- endmacro %}
