{{
    config(
        materialized='incremental',
        incremental_strategy=csinfra_events_strategy('append'),
        on_schema_change='fail',
        pre_hook="{{ csinfra_set_work_mem() }}",
        indexes=[
            {'columns': ['audit_log_id'], 'unique': True},
            {'columns': ['creator_profile_id', 'changed_at']},
        ],
        **csinfra_events_partitioning('changed_on')
    )
}}
-- One row per trust-tier change the audit trail records (system.trust_updated, docs/rules.md §6):
-- the backfill's and the online path's alike. The trust-tier history is rebuilt from these rows.
--
-- Incremental: a run re-reads audit rows created since the newest one seen minus var events_lookback
-- and appends those it does not hold yet (audit rows are append-only, so a row once read never changes).
-- On Spark the table is partitioned by the day of changed_at (changed_on) and a run overwrites every whole
-- day from the one holding the newest change seen minus the lookback, re-read from the audit trail.
-- In a full `dbt run` this model waits for the write-back, whose tier changes it reads
-- (`csinfra marts` builds it without running the write-back):
-- depends_on: {{ ref('wb_creator_profiles') }}
with

audit_logs as (
    select
        audit_rows.audit_log_id,
        audit_rows.target_id,
        audit_rows.metadata,
        audit_rows.created_at
    from {{ ref('stg_app__audit_logs') }} as audit_rows
    where
        audit_rows.action = 'system.trust_updated'
        and audit_rows.target_type = 'CreatorProfile'
        and audit_rows.target_id is not null
        and {{ incremental_events_filter('audit_rows.created_at', 'changed_at') }}
        and {{ incremental_not_seen('audit_rows.audit_log_id', 'audit_log_id') }}
),

final as (
    select
        audit_log_id,
        target_id as creator_profile_id,
        {{ csinfra_json_text('metadata', 'from') }} as from_tier,
        {{ csinfra_json_text('metadata', 'to') }} as to_tier,
        {{ csinfra_json_text('metadata', 'source') }} as change_source,
        created_at as changed_at
    {{ csinfra_events_day_column('created_at', 'changed_on') }}
    from audit_logs
)

select * from final
