{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='audit_log_id',
        on_schema_change='fail',
        post_hook=[
            "create unique index if not exists {{ this.name }}__key on {{ this }} (audit_log_id)",
            "create index if not exists {{ this.name }}__creator on {{ this }} (creator_profile_id, changed_at)",
        ],
    )
}}
-- One row per trust-tier change the audit trail records (system.trust_updated, SPEC section 6):
-- the backfill's and the online path's alike. The trust-tier history is rebuilt from these rows.
--
-- Incremental: a run re-reads audit rows created since the newest one seen minus var events_lookback.
-- In a full `dbt run` this model waits for the write-back, whose tier changes it reads
-- (`csinfra marts` builds it without running the write-back):
-- depends_on: {{ ref('wb_creator_profiles') }}
with

audit_logs as (
    select
        audit_log_id,
        target_id,
        metadata,
        created_at
    from {{ ref('stg_app__audit_logs') }}
    where
        action = 'system.trust_updated'
        and target_type = 'CreatorProfile'
        and target_id is not null
        {%- if is_incremental() %}
            and created_at >= {{ incremental_events_since('changed_at') }}
        {%- endif %}
),

final as (
    select
        audit_log_id,
        target_id as creator_profile_id,
        metadata ->> 'from' as from_tier,
        metadata ->> 'to' as to_tier,
        metadata ->> 'source' as change_source,
        created_at as changed_at
    from audit_logs
)

select * from final
