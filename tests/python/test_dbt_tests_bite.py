"""Every generic test of ours and every singular test, shown failing on data built to break it (one negative case
each; the leak guards column_names_exclude and no_sensitive_values have theirs in test_marts.py). The same
selections pass on the untouched data first, so each failure is the corruption's."""

from __future__ import annotations

import pytest

FIRST_CREATOR = "(select min(id) from creator_profiles)"
FIRST_OFFER = "(select min(id) from offers)"

# (what breaks, the SQL that breaks it, the dbt selection, a fragment of the failing test's name)
CASES = [
    (
        "accepted_range",
        [
            # the database's own CHECK would refuse it: the test is the second line of defence
            'alter table creator_profiles drop constraint "creator_profiles_profileCompleteness_range"',
            f"""update creator_profiles set "profileCompleteness" = 1.5 where id = {FIRST_CREATOR}""",
        ],
        "test_name:accepted_range,stg_app__creator_profiles",
        "accepted_range_stg_app__creator_profiles_profile_completeness",
    ),
    (
        "csinfra_expression_is_true",
        [
            f"""update creator_profiles set "trustTier" = 'PROVEN', "firstCollabCompletedAt" = null
                where id = {FIRST_CREATOR}"""
        ],
        "test_name:csinfra_expression_is_true,stg_app__creator_profiles",
        "csinfra_expression_is_true_stg_app__creator_profiles",
    ),
    (
        "json_array_of",
        [f"""update creator_profiles set "readinessBlockers" = '["bogus"]' where id = {FIRST_CREATOR}"""],
        "test_name:json_array_of,stg_app__creator_profiles",
        "json_array_of_stg_app__creator_profiles_readiness_blockers",
    ),
    (
        "ordered_subsequence_of",
        [
            f"""update creator_profiles set "readinessBlockers" = '["missing_handle", "missing_display_name"]'
                where id = {FIRST_CREATOR}"""
        ],
        "test_name:ordered_subsequence_of,stg_app__creator_profiles",
        "ordered_subsequence_of_stg_app__creator_profiles_readiness_blockers",
    ),
    (
        "unique_combination_of_columns",
        ["insert into csinfra.offer_status_transitions (from_status, to_status) values ('draft', 'pending')"],
        "test_name:unique_combination_of_columns,offer_status_transitions",
        "unique_combination_of_columns_offer_status_transitions",
    ),
    (
        "relationships_where",
        ["update csinfra.offer_statuses set is_creator_response = false where offer_status = 'accepted'"],
        "test_name:relationships_where,fct_offer_funnel",
        "relationships_where_fct_offer_funnel_response_type",
    ),
    (
        "csinfra_exactly_one_true",
        ["update csinfra.creator_blockers set is_oauth_blocker = true where blocker_code = 'missing_bio'"],
        "test_name:csinfra_exactly_one_true",
        "csinfra_exactly_one_true_creator_blockers_is_oauth_blocker",
    ),
    (
        # an unknown collaboration status fails verification (it was a warning, which no run would notice)
        "relationships (collaboration status)",
        ["update collaborations set status = 'archived' where id = (select min(id) from collaborations)"],
        "test_name:relationships,stg_app__collaborations",
        "relationships_stg_app__collaborations_status",
    ),
    (
        "assert_creators_stored_equal_derived",
        [f"""update creator_profiles set "profileCompleteness" = 0.123 where id = {FIRST_CREATOR}"""],
        "assert_creators_stored_equal_derived",
        "assert_creators_stored_equal_derived",
    ),
    (
        "assert_offers_stored_equal_derived",
        [f"""update offers set "isValid" = not "isValid" where id = {FIRST_OFFER}"""],
        "assert_offers_stored_equal_derived",
        "assert_offers_stored_equal_derived",
    ),
    (
        "assert_trust_tier_history_ends_at_stored_tiers",
        [
            f"""update creator_profiles set "trustTier" = case when "trustTier" = 'NEW' then 'VERIFIED'
                else 'NEW' end::"TrustTier" where id = {FIRST_CREATOR}"""
        ],
        "assert_trust_tier_history_ends_at_stored_tiers",
        "assert_trust_tier_history_ends_at_stored_tiers",
    ),
    (
        "assert_blocker_counts_match_dashboard",
        [
            """delete from csinfra.rpt_creator_dashboard_blockers
               where dashboard_blocker_id = (select min(dashboard_blocker_id) from csinfra.rpt_creator_dashboard_blockers)"""
        ],
        "assert_blocker_counts_match_dashboard",
        "assert_blocker_counts_match_dashboard",
    ),
    (
        "assert_blocker_counts_match_dashboard (the path both marts share)",
        [
            # both marts still agree with each other; only the stored profiles, counted another way,
            # now name a blocker the marts did not see (as if their shared expansion had dropped it)
            """update creator_profiles set "readinessBlockers" = '["missing_bio"]'
                where id = (select min(id) from creator_profiles
                            where not "readinessBlockers" @> '["missing_bio"]')"""
        ],
        "assert_blocker_counts_match_dashboard",
        "assert_blocker_counts_match_dashboard",
    ),
]


def test_every_selection_passes_on_the_untouched_data(marts_db):
    log = marts_db.dbt("test", "--select", *[selection for _, _, selection, _ in CASES])
    assert "ERROR=0" in log and "FAIL" not in log.split("Done.")[-1]
    for _, _, _, name in CASES:
        assert name in log, name  # every test ran


@pytest.mark.parametrize(("what", "corruption", "selection", "failing"), CASES, ids=[c[0] for c in CASES])
def test_each_test_fails_on_data_built_to_break_it(marts_db, what, corruption, selection, failing):
    with marts_db.connect() as conn:
        for statement in corruption:
            touched = conn.execute(statement).rowcount
            if not statement.lstrip().lower().startswith("alter"):
                assert touched >= 1, statement  # the corruption touched something
        conn.commit()
    with pytest.raises(AssertionError) as failed:
        marts_db.dbt("test", "--select", selection)
    log = str(failed.value)
    assert f"Failure in test {failing}" in log, log[-3000:]
