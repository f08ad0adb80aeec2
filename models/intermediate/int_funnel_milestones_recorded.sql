{{
    config(
        materialized='incremental',
        incremental_strategy=csinfra_events_strategy('delete+insert'),
        unique_key=['subject_type', 'subject_id', 'milestone'],
        on_schema_change='fail',
        pre_hook="{{ csinfra_set_work_mem() }}",
        indexes=[
            {'columns': ['subject_type', 'subject_id', 'milestone'], 'unique': True},
            {'columns': ['first_analytics_event_at']},
            {'columns': ['first_audit_log_at']},
        ],
        **csinfra_events_partitioning(
            'first_recorded_on',
            moved_key=['subject_type', 'subject_id', 'milestone'],
            moved_time='first_recorded_at',
        )
    )
}}
-- One row per (offer or collaboration, funnel milestone) that the event stream records: when it was
-- first recorded, from analytics events and audit rows alike (docs/rules.md §8). Duplicated events
-- change nothing (the first time wins); a response logged late never moves the time later.
--
-- Incremental: a run re-reads only events created since the watermark minus var events_lookback, and
-- merges them into the rows they touch (the earliest time wins, so re-reading an event is harmless). Each
-- source has its own watermark, the newest first-recorded time of a milestone from that source
-- (first_analytics_event_at, first_audit_log_at): the audit trail also holds rows written now by the
-- backfill, and analytics events are not held back by them. Every column is "earliest wins", so an event
-- that only repeats a known milestone changes no row: on PostgreSQL a run rewrites only the milestones that
-- are new or moved earlier, and the funnel downstream re-derives only their
-- offers. The price: such repeats never move the watermark either, so they are re-read until a new
-- milestone from their source arrives (more reading, never a missed event). An event whose createdAt is
-- older than the window when it arrives is only picked up by a --full-refresh.
--
-- On Spark the table is partitioned by the day of first_recorded_at (first_recorded_on) and an incremental run
-- overwrites whole partitions: it re-reads whole days of events, and rewrites every partition that holds a
-- milestone those events touch, before and after the merge (a late event can move a milestone to an earlier
-- day; a partition left with no row is dropped by the post-hook csinfra_drop_moved_partitions).
with

analytics_events as (
    select
        event_type,
        offer_id,
        collaboration_id,
        response,
        created_at
    from {{ ref('stg_app__analytics_events') }}
    where
        event_type in ('offer_sent', 'offer_responded', 'collab_started', 'collab_completed')
        and {{ incremental_events_filter('created_at', 'first_analytics_event_at') }}
),

audit_logs as (
    select
        action,
        target_id,
        {{ csinfra_json_text('metadata', 'toStatus') }} as to_status,
        created_at
    from {{ ref('stg_app__audit_logs') }}
    where
        action in ('offer.viewed', 'offer.status_changed', 'collab.started', 'collab.completed', 'collab.cancelled')
        and target_id is not null
        and {{ incremental_events_filter('created_at', 'first_audit_log_at') }}
),

recorded as (
    -- (subject, milestone, when, detail) for every event that records a funnel step
    select
        'offer' as subject_type,
        offer_id as subject_id,
        case event_type when 'offer_sent' then 'sent' else 'responded' end as milestone,
        created_at as recorded_at,
        case when event_type = 'offer_responded' then response end as detail,
        true as is_analytics_event
    from analytics_events
    where event_type in ('offer_sent', 'offer_responded') and offer_id is not null

    union all

    select
        'offer' as subject_type,
        offer_id as subject_id,
        'accepted' as milestone,
        created_at as recorded_at,
        null as detail,
        true as is_analytics_event
    from analytics_events
    where event_type = 'offer_responded' and response = 'accepted' and offer_id is not null

    union all

    select
        'collaboration' as subject_type,
        collaboration_id as subject_id,
        case event_type when 'collab_started' then 'started' else 'completed' end as milestone,
        created_at as recorded_at,
        null as detail,
        true as is_analytics_event
    from analytics_events
    where event_type in ('collab_started', 'collab_completed') and collaboration_id is not null

    union all

    select
        case when action like 'offer.%' then 'offer' else 'collaboration' end as subject_type,
        target_id as subject_id,
        case action
            when 'offer.viewed' then 'viewed'
            when 'offer.status_changed' then 'accepted'
            when 'collab.started' then 'started'
            when 'collab.completed' then 'completed'
            else 'cancelled'
        end as milestone,
        created_at as recorded_at,
        null as detail,
        false as is_analytics_event
    from audit_logs
    where action <> 'offer.status_changed' or to_status = 'accepted'
),

new_milestones as (
    select
        subject_type,
        subject_id,
        milestone,
        min(recorded_at) as first_recorded_at,
        -- the detail of the first event (ties: the smallest non-NULL detail)
        {{ csinfra_first_by('detail', ['recorded_at', 'detail']) }} as first_detail,
        min(recorded_at) filter (where is_analytics_event) as first_analytics_event_at,
        min(recorded_at) filter (where not is_analytics_event) as first_audit_log_at
    from recorded
    group by subject_type, subject_id, milestone
),

{% if is_incremental() and csinfra_events_overwrite_days() %}
    touched_days as (
        -- the partitions holding a milestone the re-read events touch: rewritten whole
        select distinct seen.first_recorded_on
        from {{ this }} as seen
        inner join new_milestones
            on
                seen.subject_type = new_milestones.subject_type
                and seen.subject_id = new_milestones.subject_id
                and seen.milestone = new_milestones.milestone
    ),

    seen as (
        select
            subject_type,
            subject_id,
            milestone,
            first_recorded_at,
            first_detail,
            first_analytics_event_at,
            first_audit_log_at
        from {{ this }}
        where first_recorded_on in (select touched_days.first_recorded_on from touched_days)
    ),

    merged as (
        select
            coalesce(new_milestones.subject_type, seen.subject_type) as subject_type,
            coalesce(new_milestones.subject_id, seen.subject_id) as subject_id,
            coalesce(new_milestones.milestone, seen.milestone) as milestone,
            least(new_milestones.first_recorded_at, seen.first_recorded_at) as first_recorded_at,
            case
                when seen.subject_id is null or new_milestones.first_recorded_at < seen.first_recorded_at
                    then new_milestones.first_detail
                when new_milestones.subject_id is null or new_milestones.first_recorded_at > seen.first_recorded_at
                    then seen.first_detail
                else least(new_milestones.first_detail, seen.first_detail)
            end as first_detail,
            least(new_milestones.first_analytics_event_at, seen.first_analytics_event_at) as first_analytics_event_at,
            least(new_milestones.first_audit_log_at, seen.first_audit_log_at) as first_audit_log_at
        from new_milestones
        full outer join seen
            on
                new_milestones.subject_type = seen.subject_type
                and new_milestones.subject_id = seen.subject_id
                and new_milestones.milestone = seen.milestone
    ),
{% elif is_incremental() %}
    merged_with_stored as (
        select
            new_milestones.subject_type,
            new_milestones.subject_id,
            new_milestones.milestone,
            least(new_milestones.first_recorded_at, seen.first_recorded_at) as first_recorded_at,
            case
                when seen.subject_id is null or new_milestones.first_recorded_at < seen.first_recorded_at
                    then new_milestones.first_detail
                when new_milestones.first_recorded_at > seen.first_recorded_at
                    then seen.first_detail
                else least(new_milestones.first_detail, seen.first_detail)
            end as first_detail,
            least(new_milestones.first_analytics_event_at, seen.first_analytics_event_at) as first_analytics_event_at,
            least(new_milestones.first_audit_log_at, seen.first_audit_log_at) as first_audit_log_at,
            seen.subject_id as stored_subject_id,
            seen.first_recorded_at as stored_first_recorded_at,
            seen.first_detail as stored_first_detail,
            seen.first_analytics_event_at as stored_first_analytics_event_at,
            seen.first_audit_log_at as stored_first_audit_log_at
        from new_milestones
        left join lateral (
            -- the stored row, looked up through the unique index (limit 1 keeps the lookup a nested loop)
            select
                stored.first_recorded_at,
                stored.first_detail,
                stored.first_analytics_event_at,
                stored.first_audit_log_at,
                stored.subject_id
            from {{ this }} as stored
            where
                stored.subject_type = new_milestones.subject_type
                and stored.subject_id = new_milestones.subject_id
                and stored.milestone = new_milestones.milestone
            limit 1
        ) as seen on true
    ),

    merged as (
        -- only the milestones that are new or changed: the others stay as they are, row versions included, so
        -- the funnel downstream re-derives only the offers whose milestones did change
        select
            subject_type,
            subject_id,
            milestone,
            first_recorded_at,
            first_detail,
            first_analytics_event_at,
            first_audit_log_at
        from merged_with_stored
        where
            stored_subject_id is null
            or (first_recorded_at, first_detail, first_analytics_event_at, first_audit_log_at)
            is distinct from (
                stored_first_recorded_at, stored_first_detail, stored_first_analytics_event_at, stored_first_audit_log_at
            )
    ),
{% endif %}

final as (
    select
        subject_type,
        subject_id,
        milestone,
        first_recorded_at,
        first_detail,
        first_analytics_event_at,
        first_audit_log_at
    {{ csinfra_events_day_column('first_recorded_at', 'first_recorded_on') }}
    from {{ 'merged' if is_incremental() else 'new_milestones' }}
)

select * from final
