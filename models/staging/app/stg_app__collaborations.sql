-- One row per collaboration: renamed to snake_case.
with

source as (
    select
        collaborations.*,
        {{ csinfra_row_version('collaborations') }} as row_version
    from {{ source('app', 'collaborations') }} as collaborations
),

renamed as (
    select
        id as collaboration_id,
        "offerId" as offer_id,
        "creatorId" as creator_profile_id,
        "hostId" as host_profile_id,
        "propertyId" as property_id,
        status,
        "createdAt" as created_at,
        "updatedAt" as updated_at,
        "completedAt" as completed_at,
        row_version
    from source
)

select * from renamed
