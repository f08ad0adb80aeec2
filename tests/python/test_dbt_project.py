"""`dbt build` (models, schema and invariant tests, unit tests, drift tests) on demo data, and proof that
`dbt test` fails on corrupted state."""

from __future__ import annotations

import pytest


def test_dbt_build_passes_on_a_freshly_migrated_database(applied_db):
    log = applied_db.dbt("build")
    assert "Completed successfully" in log
    assert "ERROR=0" in log and "PASS=" in log
    # unit tests ran too
    assert "creator_rules_every_branch" in log and "offer_rules_every_branch" in log


@pytest.mark.parametrize(
    ("corruption", "failing_test"),
    [
        ("""update creator_profiles set "readinessState" = 'READY', "readinessBlockers" = '["missing_bio"]' where id = (select min(id) from creator_profiles)""",
         "expression_is_true_stg_app__creator_profiles"),
        ("""update creator_profiles set "readinessBlockers" = '["no_social_connected", "missing_bio"]' where id = (select min(id) from creator_profiles)""",
         "ordered_subsequence_of_stg_app__creator_profiles_readiness_blockers"),
        ("""update offers set "validationErrors" = '["Something else"]', "isValid" = false where id = (select min(id) from offers)""",
         "json_array_of_stg_app__offers_validation_errors"),
        ("""update creator_profiles set "profileCompleteness" = 0.5 where id = (select min(id) from creator_profiles)""",
         "assert_creators_stored_equal_derived"),
    ],
)
def test_dbt_test_catches_corrupted_state(built_db, corruption, failing_test):
    with built_db.connect(autocommit=True) as conn:
        conn.execute(corruption)
    with pytest.raises(AssertionError) as failure:
        built_db.dbt("test", "--exclude", "test_type:unit")
    assert failing_test in str(failure.value)
