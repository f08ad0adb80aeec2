-- One row per analytics event.
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
        "createdAt" as created_at
    from source
)

select * from renamed
