-- One row per audit event. actorEmail, ipAddress and userAgent are not selected (docs/rules.md §9).
with

source as (
    select * from {{ source('app', 'audit_logs') }}
),

renamed as (
    select
        id as audit_log_id,
        action,
        "actorType" as actor_type,
        "actorId" as actor_id,
        "targetType" as target_type,
        "targetId" as target_id,
        metadata,
        "createdAt" as created_at
    from source
)

select * from renamed
