-- One row per user account. E-mail addresses, password hashes and IPs are not selected.
with

source as (
    select * from {{ source('app', 'users') }}
),

renamed as (
    select
        id as user_id,
        role,
        "createdAt" as created_at,
        "updatedAt" as updated_at
    from source
)

select * from renamed
