-- One row per creator profile: who they are in the marketplace and their Phase 1 state as the rules
-- derive it (SPEC section 4; equal to the stored fields after a backfill, which `csinfra verify`
-- proves). Built once here so every creator mart reads the same derivation. No handle, name, bio,
-- e-mail address, access token or IP address: only ids, flags, states and times.
with

profiles as (
    select
        creator_profile_id,
        user_id,
        is_active,
        is_public,
        instagram_connected,
        tiktok_connected,
        created_at
    from {{ ref('stg_app__creator_profiles') }}
),

derived as (
    select
        creator_profile_id,
        trust_tier,
        readiness_state,
        readiness_blockers,
        profile_completeness,
        first_offer_received_at,
        first_offer_responded_at,
        first_collab_completed_at,
        is_drifted
    from {{ ref('int_creators_derived') }}
),

final as (
    select
        profiles.creator_profile_id,
        profiles.user_id,
        coalesce(profiles.is_active, false) as is_active,
        coalesce(profiles.is_public, false) as is_public,
        coalesce(profiles.instagram_connected, false)
        or coalesce(profiles.tiktok_connected, false) as has_social_connected,
        profiles.created_at as signed_up_at,
        derived.trust_tier,
        derived.readiness_state,
        derived.readiness_blockers,
        jsonb_array_length(derived.readiness_blockers) as blocker_count,
        derived.profile_completeness,
        derived.first_offer_received_at,
        derived.first_offer_responded_at,
        derived.first_collab_completed_at,
        derived.is_drifted as is_stored_state_stale
    from profiles
    inner join derived on profiles.creator_profile_id = derived.creator_profile_id
)

select * from final
