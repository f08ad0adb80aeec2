{#- from the catalogs (seeds/), rendered as literals: this model is part of the write-back and the online function -#}
{%- set creator_responses = csinfra_catalog_values('offer_statuses', 'offer_status', flag='is_creator_response') -%}
{%- set completed_statuses = csinfra_catalog_values(
    'collaboration_statuses', 'collaboration_status', flag='is_completed'
) -%}
-- Per creator with any such moment, the "first time ever" moments derived from offers, their status
-- history and collaborations (docs/rules.md §4). One aggregate over one stream of moments: every
-- input is read once, and a filter on creator_profile_id (the online path) reaches each input's index.
with

offers as (
    select
        creator_profile_id,
        status,
        created_at,
        responded_at
    from {{ ref('stg_app__offers') }}
),

creator_responses as (
    select
        creator_profile_id,
        changed_at
    from {{ ref('int_offer_status_changes') }}
    where
        changed_by = 'creator'
        and to_status in ({{ sql_string_list(creator_responses) }})
        and changed_at is not null
),

completed_collaborations as (
    select
        creator_profile_id,
        completed_at
    from {{ ref('stg_app__collaborations') }}
    where
        status in ({{ sql_string_list(completed_statuses) }})
        and completed_at is not null
),

moments as (
    select
        creator_profile_id,
        case when status = 'draft' then null else created_at end as offer_received_at,
        responded_at as offer_responded_at,
        null::timestamp(3) as collab_completed_at
    from offers
    union all
    select
        creator_profile_id,
        null::timestamp(3) as offer_received_at,
        changed_at as offer_responded_at,
        null::timestamp(3) as collab_completed_at
    from creator_responses
    union all
    select
        creator_profile_id,
        null::timestamp(3) as offer_received_at,
        null::timestamp(3) as offer_responded_at,
        completed_at as collab_completed_at
    from completed_collaborations
),

final as (
    select
        creator_profile_id,
        min(offer_received_at) as first_offer_received_at,
        min(offer_responded_at) as first_offer_responded_at,
        min(collab_completed_at) as first_collab_completed_at
    from moments
    group by creator_profile_id
)

select * from final
