-- One row per creator profile: renamed to snake_case, nothing derived. Access tokens are never selected.
with

source as (
    select
        creator_profiles.*,
        {{ csinfra_row_version('creator_profiles') }} as row_version
    from {{ source('app', 'creator_profiles') }} as creator_profiles
),

renamed as (
    select
        id as creator_profile_id,
        "userId" as user_id,
        handle,
        "displayName" as display_name,
        bio,
        "avatarUrl" as avatar_url,
        niches,
        deliverables,
        "minimumFlatFee" as minimum_flat_fee_cents,
        "instagramConnected" as instagram_connected,
        "tiktokConnected" as tiktok_connected,
        "isActive" as is_active,
        "isPublic" as is_public,
        "createdAt" as created_at,
        "updatedAt" as updated_at,
        cast("trustTier" as {{ dbt.type_string() }}) as trust_tier,
        cast("readinessState" as {{ dbt.type_string() }}) as readiness_state,
        "readinessBlockers" as readiness_blockers,
        "profileCompleteness" as profile_completeness,
        "firstOfferReceivedAt" as first_offer_received_at,
        "firstOfferRespondedAt" as first_offer_responded_at,
        "firstCollabCompletedAt" as first_collab_completed_at,
        row_version
    from source
)

select * from renamed
