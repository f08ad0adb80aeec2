{{
    config(
        materialized=csinfra_mutable_materialization(),
        incremental_strategy='delete+insert',
        unique_key='creator_profile_id',
        on_schema_change='fail',
        indexes=[
            {'columns': ['dashboard_blocker_id'], 'unique': True},
            {'columns': ['creator_profile_id']},
        ],
        pre_hook="{{ csinfra_change_mark_begin() }}",
        post_hook=[
            "{{ csinfra_delete_vanished('creator_profile_id',
                'select creator_profile_id as key from ' ~ ref('dim_creators') ~ ' where blocker_count > 0',
                'select coalesce(sum(blocker_count), 0) from ' ~ ref('dim_creators'),
                upstreams=[ref('dim_creators')]) }}",
            "{{ csinfra_change_mark_commit() }}",
        ],
    )
}}
-- One row per blocker a creator's dashboard shows (docs/rules.md §4): the creator's blockers in their
-- rule order, each with its display message. A creator without blockers has no rows.
--
-- Incremental on PostgreSQL (macros/marts/change_marks.sql): a run replaces the rows of the creators whose
-- dim_creators row was written since the last build, and deletes those of creators left without blockers.
with

creators as (
    select
        creator_profile_id,
        readiness_state,
        profile_completeness,
        readiness_blockers
    from {{ ref('dim_creators') }}
    {%- if is_incremental() %}
    where {{ csinfra_changed_since_mark(ref('dim_creators') ~ '.xmin', upstream=ref('dim_creators')) }}
    {%- endif %}
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
