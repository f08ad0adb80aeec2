-- Writes every creator's derived Phase 1 fields into the application's creator_profiles
-- (materialized='writeback', macros/materializations/writeback.sql). Trust-tier changes are audited.
{{ config(
    target_table='creator_profiles',
    online=true,
    key='creator_profile_id',
    columns={
        'trustTier': 'trust_tier',
        'readinessState': 'readiness_state',
        'readinessBlockers': 'readiness_blockers',
        'profileCompleteness': 'profile_completeness',
        'firstOfferReceivedAt': 'first_offer_received_at',
        'firstOfferRespondedAt': 'first_offer_responded_at',
        'firstCollabCompletedAt': 'first_collab_completed_at',
    },
    audit={'column': 'trustTier', 'action': 'system.trust_updated', 'target_type': 'CreatorProfile'},
    preview={'transitions': ['trustTier', 'readinessState'], 'elements': ['readinessBlockers']},
) }}

with

derived as (
    select * from {{ ref('int_creators_derived') }}
),

final as (
    select
        creator_profile_id,
        row_version,
        trust_tier,
        stored_trust_tier,
        readiness_state,
        stored_readiness_state,
        readiness_blockers,
        stored_readiness_blockers,
        profile_completeness,
        stored_profile_completeness,
        first_offer_received_at,
        stored_first_offer_received_at,
        first_offer_responded_at,
        stored_first_offer_responded_at,
        first_collab_completed_at,
        stored_first_collab_completed_at
    from derived
)

select * from final
