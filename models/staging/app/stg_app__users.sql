-- One row per user account. E-mail addresses are not selected.
with

source as (
    select * from {{ source('app', 'users') }}
),

renamed as (
    select
        id as user_id,
        "lastLoginAt" as last_login_at,
        "createdAt" as created_at,
        "updatedAt" as updated_at
    from source
)

select * from renamed
