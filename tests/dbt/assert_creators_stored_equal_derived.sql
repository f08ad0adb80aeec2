-- Stored Phase 1 fields of every creator equal the rules' values (docs/rules.md §6: drift is 0).
-- Runs after the write-back (it depends on it), so `dbt build` checks the result of the backfill.
-- depends_on: {{ ref('wb_creator_profiles') }}
select
    creator_profile_id,
    stored_trust_tier,
    trust_tier,
    stored_readiness_state,
    readiness_state,
    stored_readiness_blockers,
    readiness_blockers,
    stored_profile_completeness,
    profile_completeness
from {{ ref('int_creators_derived') }}
where is_drifted
