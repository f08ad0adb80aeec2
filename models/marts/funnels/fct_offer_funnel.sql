{{
    config(
        materialized=csinfra_mutable_materialization(),
        incremental_strategy='delete+insert',
        unique_key='offer_id',
        on_schema_change='fail',
        indexes=[{'columns': ['offer_id'], 'unique': True}],
        pre_hook=[
            "{{ csinfra_change_mark_begin() }}",
            "{{ csinfra_census_begin(ref('stg_app__offers'), 'offer_id', 'status is distinct from ' ~ csinfra_quote('draft')) }}",
        ],
        post_hook=[
            "{{ csinfra_delete_vanished('offer_id',
                'select offer_id as key from ' ~ ref('stg_app__offers') ~ ' where status is distinct from ' ~ csinfra_quote('draft'),
                csinfra_census_rows()) }}",
            "{{ csinfra_change_mark_commit() }}",
        ],
    )
}}
-- One row per sent offer (every status but draft): when it reached each funnel step (sent, viewed,
-- responded, accepted, collaboration started, completed), the hours between steps, its value and the
-- creator's trust tier (value, validity and tier as stored: what the application shows; the
-- backfill writes them by the rules, so in a full `dbt run` this model waits for it:
-- depends_on: {{ ref('wb_offers') }}).
-- Each step takes the earliest time any source knows: the operational columns, the offer's
-- statusHistory, the analytics events and the audit trail (duplicate and late events change
-- nothing). The is_* flags are monotone: a step counts as reached when any later step was, even
-- where its own time is unknown (then its *_at column is NULL).
--
-- Incremental on PostgreSQL (macros/marts/change_marks.sql): a run re-derives the offers with a row written
-- since the last build in any source it reads (the offer, its collaboration, its creator's dim_creators row,
-- their funnel milestones), and deletes the offers that are gone or back to draft.
with
{% if is_incremental() %}
changed_offers as (
    -- the offers written since the mark, found by the pre-hook's one read of the offers (csinfra_census_begin)
    {{ csinfra_census_keys('offer_id') }}

    union

    select offer_id
    from {{ ref('stg_app__collaborations') }}
    where {{ csinfra_changed_since_mark('row_version') }}

    union

    select offers.offer_id
    from {{ ref('dim_creators') }} as dim
    inner join {{ ref('stg_app__offers') }} as offers on dim.creator_profile_id = offers.creator_profile_id
    where {{ csinfra_changed_since_mark('dim.xmin', upstream=ref('dim_creators')) }}

    union

    select coalesce(collaborations.offer_id, milestones.subject_id) as offer_id
    from {{ ref('int_funnel_milestones_recorded') }} as milestones
    left join {{ ref('stg_app__collaborations') }} as collaborations
        on
            milestones.subject_type = 'collaboration'
            and milestones.subject_id = collaborations.collaboration_id
    where {{ csinfra_changed_since_mark('milestones.xmin', upstream=ref('int_funnel_milestones_recorded')) }}
),
{% endif %}

offer_statuses as (
    -- the catalog (seeds/offer_statuses.csv): which statuses are a creator's response
    select
        offer_status,
        is_creator_response
    from {{ ref('offer_statuses') }}
),

collaboration_statuses as (
    select
        collaboration_status,
        is_completed
    from {{ ref('collaboration_statuses') }}
),

offers as (
    select
        offer_id,
        creator_profile_id,
        host_profile_id,
        property_id,
        offer_type,
        status,
        created_at,
        responded_at,
        expires_at,
        total_value_cents,
        is_valid
    from {{ ref('stg_app__offers') }}
    where
        status is distinct from 'draft'
        and {{ csinfra_key_is_changed('offer_id', 'select changed_offers.offer_id from changed_offers') }}
),

history as (
    select
        changes.offer_id,
        min(changes.changed_at) filter (
            where changes.from_status = 'draft' and changes.to_status = 'pending'
        ) as sent_at,
        min(changes.changed_at) filter (
            where changes.changed_by = 'creator'
            and coalesce(to_statuses.is_creator_response, false)
        ) as responded_at,
        {{ csinfra_first_by(
            'changes.to_status',
            ['changes.changed_at', 'changes.history_position'],
            where="changes.changed_by = 'creator' and changes.changed_at is not null"
                ~ " and coalesce(to_statuses.is_creator_response, false)",
        ) }} as response_type,
        min(changes.changed_at) filter (where changes.to_status = 'accepted') as accepted_at
    from {{ ref('int_offer_status_changes') }} as changes
    left join offer_statuses as to_statuses on changes.to_status = to_statuses.offer_status
    where {{ csinfra_key_is_changed('changes.offer_id', 'select changed_offers.offer_id from changed_offers') }}
    group by changes.offer_id
),

offer_milestones as (
    select
        subject_id as offer_id,
        min(first_recorded_at) filter (where milestone = 'sent') as sent_event_at,
        min(first_recorded_at) filter (where milestone = 'viewed') as viewed_at,
        min(first_recorded_at) filter (where milestone = 'responded') as responded_at,
        min(first_detail) filter (where milestone = 'responded') as response_type,
        min(first_recorded_at) filter (where milestone = 'accepted') as accepted_at
    from {{ ref('int_funnel_milestones_recorded') }}
    where
        subject_type = 'offer'
        and {{ csinfra_key_is_changed('subject_id', 'select changed_offers.offer_id from changed_offers') }}
    group by subject_id
),

collaborations as (
    select
        collaboration_id,
        offer_id,
        status,
        created_at,
        completed_at
    from {{ ref('stg_app__collaborations') }}
    where {{ csinfra_key_is_changed('offer_id', 'select changed_offers.offer_id from changed_offers') }}
),

collaboration_milestones as (
    select
        subject_id as collaboration_id,
        min(first_recorded_at) filter (where milestone = 'started') as started_at,
        min(first_recorded_at) filter (where milestone = 'completed') as completed_at,
        min(first_recorded_at) filter (where milestone = 'cancelled') as cancelled_at
    from {{ ref('int_funnel_milestones_recorded') }}
    where
        subject_type = 'collaboration'
        and {{ csinfra_key_is_changed('subject_id', 'select collaborations.collaboration_id from collaborations') }}
    group by subject_id
),

creators as (
    select
        creator_profile_id,
        trust_tier
    from {{ ref('dim_creators') }}
),

steps as (
    select
        offers.offer_id,
        offers.creator_profile_id,
        offers.host_profile_id,
        offers.property_id,
        offers.offer_type,
        offers.status,
        offers.total_value_cents,
        offers.is_valid,
        creators.trust_tier as creator_trust_tier,
        collaborations.collaboration_id,
        collaborations.status as collaboration_status,
        offer_milestones.sent_event_at is not null as has_sent_event,
        coalesce(history.sent_at, offers.created_at) as sent_at,
        offer_milestones.viewed_at,
        least(offers.responded_at, history.responded_at, offer_milestones.responded_at) as responded_at,
        coalesce(
            history.response_type,
            offer_milestones.response_type,
            case
                when
                    coalesce(current_status.is_creator_response, false)
                    and offers.responded_at is not null
                    then offers.status
            end
        ) as response_type,
        coalesce(
            least(history.accepted_at, offer_milestones.accepted_at),
            case
                when offers.status = 'accepted' or collaborations.collaboration_id is not null
                    then least(
                        case when offers.status = 'accepted' then offers.responded_at end,
                        collaborations.created_at
                    )
            end
        ) as accepted_at,
        least(collaborations.created_at, collaboration_milestones.started_at) as collab_started_at,
        least(
            case when coalesce(collaboration_status.is_completed, false) then collaborations.completed_at end,
            collaboration_milestones.completed_at
        ) as completed_at,
        coalesce(collaboration_status.is_completed, false)
        or collaboration_milestones.completed_at is not null as is_completed,
        collaborations.collaboration_id is not null
        or collaboration_milestones.started_at is not null as has_collaboration,
        offers.status = 'accepted' as is_status_accepted,
        coalesce(current_status.is_creator_response, false) as is_status_responded
    from offers
    left join offer_statuses as current_status on offers.status = current_status.offer_status
    left join history on offers.offer_id = history.offer_id
    left join offer_milestones on offers.offer_id = offer_milestones.offer_id
    left join collaborations on offers.offer_id = collaborations.offer_id
    left join collaboration_statuses as collaboration_status
        on collaborations.status = collaboration_status.collaboration_status
    left join collaboration_milestones on collaborations.collaboration_id = collaboration_milestones.collaboration_id
    left join creators on offers.creator_profile_id = creators.creator_profile_id
),

flags as (
    select
        steps.*,
        coalesce(steps.is_completed, false) as reached_completed,
        coalesce(steps.is_completed or steps.has_collaboration or steps.collab_started_at is not null, false)
            as reached_collab_started
    from steps
),

flags_accepted as (
    select
        flags.*,
        flags.reached_collab_started or flags.is_status_accepted or flags.accepted_at is not null as reached_accepted
    from flags
),

flags_responded as (
    select
        flags_accepted.*,
        flags_accepted.reached_accepted
        or flags_accepted.is_status_responded
        or flags_accepted.responded_at is not null as reached_responded
    from flags_accepted
),

final as (
    select
        offer_id,
        creator_profile_id,
        host_profile_id,
        property_id,
        offer_type,
        status,
        total_value_cents,
        is_valid,
        creator_trust_tier,
        collaboration_id,
        collaboration_status,
        sent_at,
        date_trunc('week', sent_at)::date as sent_week,
        viewed_at,
        responded_at,
        response_type,
        accepted_at,
        collab_started_at,
        completed_at,
        reached_responded or viewed_at is not null as is_viewed,
        reached_responded as is_responded,
        reached_accepted as is_accepted,
        reached_collab_started as is_collab_started,
        reached_completed as is_completed,
        {{ hours_between('sent_at', 'viewed_at') }} as hours_to_view,
        {{ hours_between('sent_at', 'responded_at') }} as hours_to_response,
        {{ hours_between('sent_at', 'accepted_at') }} as hours_to_accept,
        {{ hours_between('accepted_at', 'collab_started_at') }} as hours_accept_to_collab_start,
        {{ hours_between('collab_started_at', 'completed_at') }} as hours_collab_start_to_complete,
        {{ hours_between('sent_at', 'completed_at') }} as hours_to_complete,
        has_sent_event
    from flags_responded
)

{{ csinfra_select_rows_that_differ('final', 'offer_id') }}
