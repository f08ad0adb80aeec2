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
    where {{ csinfra_json_is_nonempty_array('status_history') }}
),

entries as (
    select
        offers.offer_id,
        offers.creator_profile_id,
        offers.host_profile_id,
        {{ csinfra_json_position('history') }} as history_position,
        history.value as entry
    from offers
    {{ csinfra_json_elements('offers.status_history', 'history') }}
),

final as (
    select
        offer_id,
        creator_profile_id,
        host_profile_id,
        history_position,
        {{ csinfra_json_text('entry', 'fromStatus') }} as from_status,
        {{ csinfra_json_text('entry', 'toStatus') }} as to_status,
        {{ csinfra_json_text('entry', 'changedBy') }} as changed_by,
        {{ csinfra_parse_iso_timestamp(csinfra_json_text('entry', 'changedAt')) }} as changed_at,
        {{ csinfra_json_text('entry', 'reason') }} as reason
    from entries
)

select * from final
