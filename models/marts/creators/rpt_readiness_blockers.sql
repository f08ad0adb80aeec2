-- One row per readiness blocker (docs/rules.md §4), in display order, with its message: how many
-- creators it holds back, how many it alone holds back, and their share. Every blocker of the rules
-- has a row, also when no creator has it.
with

catalog as (
    select
        display_order,
        blocker_code,
        message
    from {{ ref('creator_blockers') }}
),

creators as (
    select
        creator_profile_id,
        is_active,
        readiness_blockers,
        blocker_count
    from {{ ref('dim_creators') }}
),

blocked as (
    select
        blockers.value as blocker_code,
        count(*) as creators_blocked,
        count(*) filter (where creators.blocker_count = 1) as creators_blocked_only_by_this,
        count(*) filter (where creators.is_active) as active_creators_blocked
    from creators
    {{ csinfra_json_elements('creators.readiness_blockers', 'blockers', as_text=true) }}
    group by blockers.value
),

totals as (
    select count(*) as total_creators
    from creators
),

final as (
    select
        catalog.display_order,
        catalog.blocker_code,
        catalog.message,
        coalesce(blocked.creators_blocked, 0) as creators_blocked,
        coalesce(blocked.creators_blocked_only_by_this, 0) as creators_blocked_only_by_this,
        coalesce(blocked.active_creators_blocked, 0) as active_creators_blocked,
        totals.total_creators,
        {{ safe_ratio('coalesce(blocked.creators_blocked, 0)', 'totals.total_creators') }} as share_of_creators
    from catalog
    cross join totals
    left join blocked on catalog.blocker_code = blocked.blocker_code
)

select * from final
