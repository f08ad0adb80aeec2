-- One row per entry of an offer's statusHistory. Malformed entries yield NULL fields, never an error:
-- a non-array history is read as empty (skipped) and an unparsable changedAt as NULL.
with

offers as (
    select
        offer_id,
        creator_profile_id,
        host_profile_id,
        status_history
    from {{ ref('stg_app__offers') }}
    -- most offers have no history yet: skip them before the per-row function call
    where jsonb_typeof(status_history) = 'array' and status_history <> '[]'::jsonb
),

entries as (
    select
        offers.offer_id,
        offers.creator_profile_id,
        offers.host_profile_id,
        history.entry_number::integer as history_position,
        history.entry
    from offers
    cross join lateral jsonb_array_elements(offers.status_history) with ordinality as history (entry, entry_number)
),

final as (
    select
        offer_id,
        creator_profile_id,
        host_profile_id,
        history_position,
        entry ->> 'fromStatus' as from_status,
        entry ->> 'toStatus' as to_status,
        entry ->> 'changedBy' as changed_by,
        {{ safe_iso_timestamp("(entry ->> 'changedAt')") }} as changed_at,
        entry ->> 'reason' as reason
    from entries
)

select * from final
