{{
    config(
        materialized=csinfra_mutable_materialization(),
        incremental_strategy='delete+insert',
        unique_key='creator_profile_id',
        on_schema_change='fail',
        indexes=[{'columns': ['creator_profile_id', 'period_number'], 'unique': True}],
        pre_hook=[
            "{{ csinfra_set_work_mem() }}",
            "{{ csinfra_change_mark_begin() }}",
            "{{ csinfra_census_begin(ref('stg_app__creator_profiles'), 'creator_profile_id') }}",
        ],
        post_hook=[
            "{{ csinfra_delete_vanished('creator_profile_id',
                'select creator_profile_id as key from ' ~ ref('stg_app__creator_profiles'),
                csinfra_census_rows(),
                stored_rows='count(*) filter (where period_number = 0)') }}",
            "{{ csinfra_change_mark_commit() }}",
        ],
    )
}}
-- One row per creator and period in which it held one trust tier, [valid_from, valid_to) (valid_to NULL: still
-- holds it), rebuilt from the audit trail of tier changes (system.trust_updated): before its first recorded
-- change (period 0, from signup) a creator held that change's "from" tier, after each change (period n) its
-- "to" tier; a creator with no recorded change has held its stored tier since signup (period 0 only).
--
-- Incremental on PostgreSQL (macros/marts/change_marks.sql): a run rebuilds the periods of the creators whose
-- profile was written, or who have a tier change recorded, since the last build, and deletes those of the
-- creators that are gone.
with
{% if is_incremental() %}
changed as (
    -- the profiles written since the mark, found by the pre-hook's one read of the profiles (csinfra_census_begin)
    {{ csinfra_census_keys('creator_profile_id') }}

    union

    select creator_profile_id
    from {{ ref('int_creator_trust_tier_changes') }}
    where {{ csinfra_changed_since_mark(ref('int_creator_trust_tier_changes') ~ '.xmin', upstream=ref('int_creator_trust_tier_changes')) }}
),
{% endif %}

profiles as (
    select
        creator_profile_id,
        trust_tier,
        created_at
    from {{ ref('stg_app__creator_profiles') }}
    where {{ csinfra_key_is_changed('creator_profile_id', 'select changed.creator_profile_id from changed') }}
),

changes as (
    select
        creator_profile_id,
        from_tier,
        to_tier,
        changed_at,
        audit_log_id
    from {{ ref('int_creator_trust_tier_changes') }}
    where {{ csinfra_key_is_changed('creator_profile_id', 'select changed.creator_profile_id from changed') }}
),

ordered_changes as (
    select
        changes.*,
        row_number()
            over (partition by changes.creator_profile_id order by changes.changed_at, changes.audit_log_id)
            as change_number,
        lead(changes.changed_at)
            over (partition by changes.creator_profile_id order by changes.changed_at, changes.audit_log_id)
            as next_changed_at
    from changes
),

periods as (
    select
        profiles.creator_profile_id,
        0 as period_number,
        coalesce(first_change.from_tier, profiles.trust_tier) as trust_tier,
        profiles.created_at as valid_from,
        first_change.changed_at as valid_to
    from profiles
    left join ordered_changes as first_change
        on
            profiles.creator_profile_id = first_change.creator_profile_id
            and first_change.change_number = 1

    union all

    select
        ordered_changes.creator_profile_id,
        ordered_changes.change_number as period_number,
        ordered_changes.to_tier as trust_tier,
        greatest(ordered_changes.changed_at, profiles.created_at) as valid_from,
        ordered_changes.next_changed_at as valid_to
    from ordered_changes
    inner join profiles on ordered_changes.creator_profile_id = profiles.creator_profile_id
)

select * from periods
