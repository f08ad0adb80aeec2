-- Every offer's value and validation (docs/rules.md §5) next to the stored values, and the terms
-- snapshot to write where none exists (built from current columns, marked "reconstructed").
{%- set o = {
    'cash_cents': 'offers.cash_cents',
    'stay_nights': 'offers.stay_nights',
    'stay_value_cents': 'offers.stay_value_cents',
    'deliverables': 'offers.deliverables',
    'traffic_bonus_enabled': 'offers.traffic_bonus_enabled',
    'traffic_bonus_threshold': 'offers.traffic_bonus_threshold',
    'traffic_bonus_cents': 'offers.traffic_bonus_cents',
} %}
with

source_offers as (
    select * from {{ ref('stg_app__offers') }}
),

offers as (
    -- the stay value, resolved once per row: the rules below read it three times, and each reading of
    -- the snapshot's JSON costs more than all the other rules together
    select
        source_offers.*,
        {{ offer_stay_value_cents({
            'stay_nights': 'source_offers.stay_nights',
            'stay_value_cents': snapshot_stay_value_cents('source_offers.original_terms_snapshot'),
        }) }} as stay_value_cents
    from source_offers
    offset 0  -- noqa: AM09
),

derived as (
    select
        offers.offer_id,
        offers.row_version,
        offers.creator_profile_id,
        offers.host_profile_id,
        offers.status,
        offers.created_at,
        offers.offer_type,
        offers.cash_cents,
        offers.stay_nights,
        offers.deliverables,
        offers.requirements,
        offers.traffic_bonus_enabled,
        offers.traffic_bonus_threshold,
        offers.traffic_bonus_cents,
        offers.total_value_cents as stored_total_value_cents,
        offers.is_valid as stored_is_valid,
        offers.validation_errors as stored_validation_errors,
        offers.original_terms_snapshot as stored_original_terms_snapshot,
        offers.stay_value_cents,
        {{ offer_total_value_cents(o) }} as total_value_cents,
        {{ offer_validation_errors(o) }} as validation_errors
    from offers
    -- evaluated once per row: without this fence the planner would copy the rule expressions into every
    -- comparison below (the drift predicate reads each derived value twice), doubling the work of a full scan
    offset 0  -- noqa: AM09
),

validated as (
    select
        derived.*,
        derived.validation_errors = '[]'::jsonb as is_valid,
        coalesce(
            derived.stored_original_terms_snapshot,
            jsonb_build_object(
                'offerType', derived.offer_type,
                'cashCents', derived.cash_cents,
                'stayNights', derived.stay_nights,
                'stayValueCents', derived.stay_value_cents,
                'deliverables', to_jsonb(derived.deliverables),
                'requirements', derived.requirements,
                'trafficBonusEnabled', derived.traffic_bonus_enabled,
                'trafficBonusThreshold', derived.traffic_bonus_threshold,
                'trafficBonusCents', derived.traffic_bonus_cents,
                'totalValueCents', derived.total_value_cents,
                'snapshotAt', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'reconstructed', true
            )
        ) as original_terms_snapshot
    from derived
),

final as (
    select
        validated.*,
        {{ any_distinct(
            ['validated.stored_total_value_cents', 'validated.stored_is_valid', 'validated.stored_validation_errors',
             'validated.stored_original_terms_snapshot is null'],
            ['validated.total_value_cents', 'validated.is_valid', 'validated.validation_errors', 'false'],
        ) }} as is_drifted
    from validated
)

select * from final
