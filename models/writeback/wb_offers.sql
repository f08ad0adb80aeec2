-- Writes every offer's value and validation into the application's offers, and a reconstructed
-- terms snapshot where none exists (materialized='writeback'). statusHistory is never touched.
{{ config(
    target_table='offers',
    key='offer_id',
    columns={
        'totalValueCents': 'total_value_cents',
        'isValid': 'is_valid',
        'validationErrors': 'validation_errors',
        'originalTermsSnapshot': 'original_terms_snapshot',
    },
    preview={'transitions': ['isValid'], 'elements': ['validationErrors']},
) }}

with

validated as (
    select * from {{ ref('int_offers_validated') }}
),

final as (
    select
        offer_id,
        row_version,
        total_value_cents,
        stored_total_value_cents,
        is_valid,
        stored_is_valid,
        validation_errors,
        stored_validation_errors,
        original_terms_snapshot,
        stored_original_terms_snapshot
    from validated
)

select * from final
