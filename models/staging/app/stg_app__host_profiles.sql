-- One row per host profile.
with

source as (
    select * from {{ source('app', 'host_profiles') }}
),

renamed as (
    select
        id as host_profile_id,
        "userId" as user_id,
        "displayName" as display_name,
        "createdAt" as created_at
    from source
)

select * from renamed
