-- One row per offer: renamed to snake_case, nothing derived.
with

source as (
    select
        offers.*,
        {{ csinfra_row_version('offers') }} as row_version
    from {{ source('app', 'offers') }} as offers
),

renamed as (
    select
        id as offer_id,
        "hostProfileId" as host_profile_id,
        "creatorProfileId" as creator_profile_id,
        "propertyId" as property_id,
        "offerType" as offer_type,
        "cashCents" as cash_cents,
        "stayNights" as stay_nights,
        "trafficBonusEnabled" as traffic_bonus_enabled,
        "trafficBonusThreshold" as traffic_bonus_threshold,
        "trafficBonusCents" as traffic_bonus_cents,
        requirements,
        deliverables,
        status,
        "counterCashCents" as counter_cash_cents,
        "negotiationRound" as negotiation_round,
        "createdAt" as created_at,
        "updatedAt" as updated_at,
        "expiresAt" as expires_at,
        "respondedAt" as responded_at,
        "hostViewedAt" as host_viewed_at,
        "originalTermsSnapshot" as original_terms_snapshot,
        "statusHistory" as status_history,
        "totalValueCents" as total_value_cents,
        "isValid" as is_valid,
        "validationErrors" as validation_errors,
        row_version
    from source
)

select * from renamed
