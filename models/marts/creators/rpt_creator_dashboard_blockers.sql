-- One row per blocker a creator's dashboard shows (docs/rules.md §4): the creator's blockers in their
-- rule order, each with its display message. A creator without blockers has no rows.
with

creators as (
    select
        creator_profile_id,
        readiness_state,
        profile_completeness,
        readiness_blockers
    from {{ ref('dim_creators') }}
),

catalog as (
    select
        display_order,
        blocker_code,
        message
    from {{ ref('creator_blockers') }}
),

blockers as (
    select
        creators.creator_profile_id,
        creators.readiness_state,
        creators.profile_completeness,
        entries.value as blocker_code,
        {{ csinfra_json_position('entries') }} as position_on_dashboard
    from creators
    {{ csinfra_json_elements('creators.readiness_blockers', 'entries', as_text=true) }}
),

final as (
    select
        blockers.creator_profile_id || ':' || blockers.blocker_code as dashboard_blocker_id,
        blockers.creator_profile_id,
        blockers.position_on_dashboard,
        blockers.blocker_code,
        catalog.message,
        blockers.readiness_state,
        blockers.profile_completeness
    from blockers
    left join catalog on blockers.blocker_code = catalog.blocker_code
)

select * from final
