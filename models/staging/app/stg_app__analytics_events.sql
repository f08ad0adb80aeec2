-- One row per analytics event, with the ids and values its eventData carries (docs/rules.md §8) as
-- typed columns. eventData that is not an object, or lacks a key, yields NULL, never an error.
with

source as (
    select * from {{ source('app', 'analytics_events') }}
),

renamed as (
    select
        id as analytics_event_id,
        "actorType" as actor_type,
        "actorId" as actor_id,
        "eventType" as event_type,
        "eventData" as event_data,
        "sessionId" as session_id,
        "createdAt" as created_at,
        {{ csinfra_json_text('"eventData"', 'offerId') }} as offer_id,
        {{ csinfra_json_text('"eventData"', 'collabId') }} as collaboration_id,
        {{ csinfra_json_text('"eventData"', 'creatorProfileId') }} as creator_profile_id,
        {{ csinfra_json_text('"eventData"', 'hostProfileId') }} as host_profile_id,
        {{ csinfra_json_text('"eventData"', 'response') }} as response,
        {{ csinfra_json_text('"eventData"', 'source') }} as view_source
    from source
)

select * from renamed
