-- One row per creator profile: who they are in the marketplace and their Phase 1 state as stored,
-- which is what the application shows (docs/rules.md §4). The backfill writes it by the rules and
-- `csinfra verify` / the drift tests prove stored = rules; in a full `dbt run` this model waits for
-- the write-back:
-- depends_on: {{ ref('wb_creator_profiles') }}
-- No handle, name, bio, e-mail address, access token or IP address: only ids, flags, states, times
-- (the creator's last login comes from their user account).
with

profiles as (
    select
        creator_profile_id,
        user_id,
        is_active,
        is_public,
        instagram_connected,
        tiktok_connected,
        created_at,
        trust_tier,
        readiness_state,
        readiness_blockers,
        profile_completeness,
        first_offer_received_at,
        first_offer_responded_at,
        first_collab_completed_at
    from {{ ref('stg_app__creator_profiles') }}
),

users as (
    select
        user_id,
        last_login_at
    from {{ ref('stg_app__users') }}
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
        profiles.trust_tier,
        profiles.readiness_state,
        profiles.readiness_blockers,
        {{ csinfra_json_array_length('profiles.readiness_blockers') }} as blocker_count,
        profiles.profile_completeness,
        profiles.first_offer_received_at,
        profiles.first_offer_responded_at,
        profiles.first_collab_completed_at,
        users.last_login_at
    from profiles
    left join users on profiles.user_id = users.user_id
)

select * from final
