{{
    config(
        materialized=csinfra_mutable_materialization(),
        incremental_strategy='delete+insert',
        unique_key='creator_profile_id',
        on_schema_change='fail',
        indexes=[{'columns': ['creator_profile_id'], 'unique': True}],
        pre_hook="{{ csinfra_change_mark_begin() }}",
        post_hook=[
            "{{ csinfra_delete_vanished('creator_profile_id',
                'select creator_profile_id as key from ' ~ ref('dim_creators'), upstreams=[ref('dim_creators')]) }}",
            "{{ csinfra_change_mark_commit() }}",
        ],
    )
}}
-- One row per creator: the activation path signed up -> profile complete -> ready -> first offer ->
-- first response -> first completed collaboration, from dim_creators (the rules' derivation,
-- docs/rules.md §4). Profile completion and readiness are states without a recorded time; the three
-- "first" steps carry their timestamps.
--
-- Incremental on PostgreSQL (macros/marts/change_marks.sql): a run re-derives the creators whose
-- dim_creators row was written since the last build.
with

creators as (
    select
        creator_profile_id,
        user_id,
        is_active,
        is_public,
        signed_up_at,
        date_trunc('week', signed_up_at)::date as signup_week,
        trust_tier,
        readiness_state,
        profile_completeness,
        blocker_count,
        readiness_state <> 'INCOMPLETE' as is_profile_complete,
        readiness_state = 'READY' as is_ready,
        first_offer_received_at,
        first_offer_responded_at,
        first_collab_completed_at
    from {{ ref('dim_creators') }}
    {%- if is_incremental() %}
    where {{ csinfra_changed_since_mark(ref('dim_creators') ~ '.xmin', upstream=ref('dim_creators')) }}
    {%- endif %}
),

final as (
    select
        creator_profile_id,
        user_id,
        is_active,
        is_public,
        signed_up_at,
        signup_week,
        trust_tier,
        readiness_state,
        profile_completeness,
        blocker_count,
        is_profile_complete,
        is_ready,
        first_offer_received_at,
        first_offer_responded_at,
        first_collab_completed_at,
        {{ days_between('signed_up_at', 'first_offer_received_at') }} as days_to_first_offer,
        {{ days_between('signed_up_at', 'first_offer_responded_at') }} as days_to_first_response,
        {{ days_between('signed_up_at', 'first_collab_completed_at') }} as days_to_first_completed_collab,
        case
            when first_collab_completed_at is not null then 'first_completed_collab'
            when first_offer_responded_at is not null then 'first_response'
            when first_offer_received_at is not null then 'first_offer'
            when is_ready then 'ready'
            when is_profile_complete then 'profile_complete'
            else 'signed_up'
        end as activation_stage
    from creators
)

{{ csinfra_select_rows_that_differ('final', 'creator_profile_id') }}
