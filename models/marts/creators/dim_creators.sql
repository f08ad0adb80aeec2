{{
    config(
        materialized=csinfra_mutable_materialization(),
        incremental_strategy='delete+insert',
        unique_key='creator_profile_id',
        on_schema_change='fail',
        indexes=[{'columns': ['creator_profile_id'], 'unique': True}],
        pre_hook=[
            "{{ csinfra_change_mark_begin() }}",
            "{{ csinfra_census_begin(ref('stg_app__creator_profiles'), 'creator_profile_id') }}",
        ],
        post_hook=[
            "{{ csinfra_delete_vanished('creator_profile_id',
                'select creator_profile_id as key from ' ~ ref('stg_app__creator_profiles'), csinfra_census_rows()) }}",
            "{{ csinfra_change_mark_commit() }}",
        ],
    )
}}
-- One row per creator profile: who they are in the marketplace and their Phase 1 state as stored,
-- which is what the application shows (docs/rules.md §4). The backfill writes it by the rules and
-- `csinfra verify` / the drift tests prove stored = rules; in a full `dbt run` this model waits for
-- the write-back:
-- depends_on: {{ ref('wb_creator_profiles') }}
-- No handle, name, bio, e-mail address, access token or IP address: only ids, flags, states, times
-- (the creator's last login comes from their user account).
--
-- Incremental on PostgreSQL (macros/marts/change_marks.sql): a run re-derives the creators whose profile or
-- user account was written since the last build, by anyone (the application, the write-back, SQL by hand),
-- and deletes those that are gone.
with
{% if is_incremental() %}
changed as (
    -- the profiles written since the mark, found by the pre-hook's one read of the profiles (csinfra_census_begin)
    {{ csinfra_census_keys('creator_profile_id') }}

    union

    select profiles.creator_profile_id
    from {{ ref('stg_app__users') }} as users
    inner join {{ ref('stg_app__creator_profiles') }} as profiles on users.user_id = profiles.user_id
    where {{ csinfra_changed_since_mark('users.row_version') }}
),
{% endif %}

profiles as (
    select
        creator_profile_id,
        user_id,
        is_active,
        is_public,
        instagram_connected,
        tiktok_connected,
        created_at,
        trust_tier,
        readiness_state,
        readiness_blockers,
        profile_completeness,
        first_offer_received_at,
        first_offer_responded_at,
        first_collab_completed_at
    from {{ ref('stg_app__creator_profiles') }}
    {%- if is_incremental() %}
    where creator_profile_id in (select changed.creator_profile_id from changed)
    {%- endif %}
),

users as (
    select
        user_id,
        last_login_at
    from {{ ref('stg_app__users') }}
),

final as (
    select
        profiles.creator_profile_id,
        profiles.user_id,
        coalesce(profiles.is_active, false) as is_active,
        coalesce(profiles.is_public, false) as is_public,
        coalesce(profiles.instagram_connected, false)
        or coalesce(profiles.tiktok_connected, false) as has_social_connected,
        profiles.created_at as signed_up_at,
        profiles.trust_tier,
        profiles.readiness_state,
        profiles.readiness_blockers,
        {{ csinfra_json_array_length('profiles.readiness_blockers') }} as blocker_count,
        profiles.profile_completeness,
        profiles.first_offer_received_at,
        profiles.first_offer_responded_at,
        profiles.first_collab_completed_at,
        users.last_login_at
    from profiles
    left join users on profiles.user_id = users.user_id
)

{{ csinfra_select_rows_that_differ('final', 'creator_profile_id') }}
