-- Per creator, the "first time ever" moments derived from offers, their status history and
-- collaborations (SPEC section 4). NULL where the data holds no such moment.
with

creators as (
    select creator_profile_id from {{ ref('stg_app__creator_profiles') }}
),

offers as (
    select
        creator_profile_id,
        status,
        created_at,
        responded_at
    from {{ ref('stg_app__offers') }}
),

status_changes as (
    select
        creator_profile_id,
        changed_by,
        to_status,
        changed_at
    from {{ ref('int_offer_status_changes') }}
),

collaborations as (
    select
        creator_profile_id,
        status,
        completed_at
    from {{ ref('stg_app__collaborations') }}
),

first_received as (
    select
        creator_profile_id,
        min(created_at) as first_offer_received_at
    from offers
    where status is distinct from 'draft'
    group by creator_profile_id
),

responses as (
    select
        creator_profile_id,
        responded_at
    from offers
    where responded_at is not null
    union all
    select
        creator_profile_id,
        changed_at as responded_at
    from status_changes
    where
        changed_by = 'creator'
        and to_status in ({{ sql_string_list(csinfra_rules().offer.creator_responses) }})
        and changed_at is not null
),

first_responded as (
    select
        creator_profile_id,
        min(responded_at) as first_offer_responded_at
    from responses
    group by creator_profile_id
),

first_completed as (
    select
        creator_profile_id,
        min(completed_at) as first_collab_completed_at
    from collaborations
    where status = {{ csinfra_quote(csinfra_rules().collaboration.completed_status) }} and completed_at is not null
    group by creator_profile_id
),

final as (
    select
        creators.creator_profile_id,
        first_received.first_offer_received_at,
        first_responded.first_offer_responded_at,
        first_completed.first_collab_completed_at
    from creators
    left join first_received on creators.creator_profile_id = first_received.creator_profile_id
    left join first_responded on creators.creator_profile_id = first_responded.creator_profile_id
    left join first_completed on creators.creator_profile_id = first_completed.creator_profile_id
)

select * from final
