{{
    config(
        materialized='incremental',
        incremental_strategy=csinfra_events_strategy('delete+insert'),
        unique_key=['creator_profile_id', 'viewed_on'],
        on_schema_change='fail',
        pre_hook="{{ csinfra_set_work_mem() }}",
        indexes=[
            {'columns': ['creator_profile_id', 'viewed_on'], 'unique': True},
            {'columns': ['last_viewed_at']},
        ],
        **csinfra_events_partitioning('viewed_on')
    )
}}
-- One row per creator and UTC day with profile_viewed events (hosts looking at a creator).
--
-- Incremental: a run recomputes, from the events, every whole day from the one holding the newest
-- event seen minus var events_lookback, and replaces those days' rows that changed (on PostgreSQL the
-- others are left as they were: csinfra_select_rows_that_differ); re-reading is harmless. On Spark the
-- table is partitioned by viewed_on and those days' partitions are overwritten.
with

views as (
    select
        creator_profile_id,
        actor_id,
        view_source,
        created_at
    from {{ ref('stg_app__analytics_events') }}
    where
        event_type = 'profile_viewed'
        and creator_profile_id is not null
        and {{ incremental_events_filter('created_at', 'last_viewed_at', whole_days=true) }}
),

final as (
    select
        creator_profile_id,
        created_at::date as viewed_on,
        count(*) as profile_views,
        count(*) filter (where view_source = 'search') as search_views,
        count(distinct actor_id) as viewing_hosts,
        max(created_at) as last_viewed_at
    from views
    group by creator_profile_id, created_at::date
)

{{ csinfra_select_rows_that_differ('final', ['creator_profile_id', 'viewed_on']) }}
