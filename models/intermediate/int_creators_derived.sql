-- Every creator's Phase 1 fields derived by the rules (SPEC section 4), next to the stored values.
-- Columns `x` are derived, `stored_x` are what the application table holds now; is_drifted says
-- whether they disagree. The write-back, the online library and the verification all read this.
{%- set c = {
    'display_name': 'creators.display_name',
    'handle': 'creators.handle',
    'bio': 'creators.bio',
    'niches': 'creators.niches',
    'deliverables': 'creators.deliverables',
    'minimum_flat_fee_cents': 'creators.minimum_flat_fee_cents',
    'avatar_url': 'creators.avatar_url',
    'instagram_connected': 'creators.instagram_connected',
    'tiktok_connected': 'creators.tiktok_connected',
    'first_collab_completed_at': 'creators.first_collab_completed_at',
} %}
with

profiles as (
    select * from {{ ref('stg_app__creator_profiles') }}
),

lifecycle as (
    select * from {{ ref('int_creator_lifecycle') }}
),

creators as (
    -- a stored first-time is never cleared and never moved later: the earlier of stored and derived
    select
        profiles.creator_profile_id,
        profiles.row_version,
        profiles.display_name,
        profiles.handle,
        profiles.bio,
        profiles.niches,
        profiles.deliverables,
        profiles.minimum_flat_fee_cents,
        profiles.avatar_url,
        profiles.instagram_connected,
        profiles.tiktok_connected,
        profiles.trust_tier as stored_trust_tier,
        profiles.readiness_state as stored_readiness_state,
        profiles.readiness_blockers as stored_readiness_blockers,
        profiles.profile_completeness as stored_profile_completeness,
        profiles.first_offer_received_at as stored_first_offer_received_at,
        profiles.first_offer_responded_at as stored_first_offer_responded_at,
        profiles.first_collab_completed_at as stored_first_collab_completed_at,
        least(profiles.first_offer_received_at, lifecycle.first_offer_received_at) as first_offer_received_at,
        least(profiles.first_offer_responded_at, lifecycle.first_offer_responded_at) as first_offer_responded_at,
        least(profiles.first_collab_completed_at, lifecycle.first_collab_completed_at) as first_collab_completed_at
    from profiles
    left join lifecycle on profiles.creator_profile_id = lifecycle.creator_profile_id
),

derived as (
    select
        creators.*,
        {{ creator_trust_tier(c) }} as trust_tier,
        {{ creator_readiness_state(c) }} as readiness_state,
        {{ creator_blockers(c) }} as readiness_blockers,
        {{ creator_completeness(c) }} as profile_completeness
    from creators
),

{%- set outputs = [
    'trust_tier', 'readiness_state', 'readiness_blockers', 'profile_completeness',
    'first_offer_received_at', 'first_offer_responded_at', 'first_collab_completed_at',
] %}

final as (
    select
        derived.*,
        {{ columns_differ(outputs, 'derived.stored_', 'derived.') }} as is_drifted
    from derived
)

select * from final
