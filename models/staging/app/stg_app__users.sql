-- One row per user account. E-mail addresses are not selected.
with

source as (
    select
        user_accounts.*,
        {{ csinfra_row_version('user_accounts') }} as row_version
    from {{ source('app', 'users') }} as user_accounts
),

renamed as (
    select
        id as user_id,
        "lastLoginAt" as last_login_at,
        "createdAt" as created_at,
        "updatedAt" as updated_at,
        row_version
    from source
)

select * from renamed
