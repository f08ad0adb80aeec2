"""`dbt build` (models, schema and invariant tests, unit tests, drift tests) on demo data, and proof that
`dbt test` fails on corrupted state."""

from __future__ import annotations

import re

import pytest


def test_dbt_build_passes_on_a_freshly_migrated_database(applied_db):
    log = applied_db.dbt("build")
    assert "Completed successfully" in log
    assert "ERROR=0" in log and "PASS=" in log
    # unit tests ran too
    assert "creator_rules_every_branch" in log and "offer_rules_every_branch" in log


# corruption of one stored row (each its own row) -> the dbt test that must catch it
CORRUPTIONS = {
    """update creator_profiles set "readinessState" = 'READY', "readinessBlockers" = '["missing_bio"]'
       where id = (select id from creator_profiles order by id limit 1)""": "csinfra_expression_is_true_stg_app__creator_profiles",
    """update creator_profiles set "readinessBlockers" = '["no_social_connected", "missing_bio"]'
       where id = (select id from creator_profiles order by id offset 1 limit 1)""": "ordered_subsequence_of_stg_app__creator_profiles_readiness_blockers",
    """update offers set "validationErrors" = '["Something else"]', "isValid" = false
       where id = (select min(id) from offers)""": "json_array_of_stg_app__offers_validation_errors",
    """update creator_profiles set "profileCompleteness" = 0.5
       where id = (select id from creator_profiles order by id offset 2 limit 1)""": "assert_creators_stored_equal_derived",
}


def test_dbt_test_catches_corrupted_state(built_db):
    """The built state passes; each corruption (READY with a blocker, blockers out of order, an unknown
    validation message, a stored value that differs from the rules) fails its own test."""
    built_db.dbt("test", "--exclude", "test_type:unit")
    with built_db.connect(autocommit=True) as conn:
        for corruption in CORRUPTIONS:
            conn.execute(corruption)
    with pytest.raises(AssertionError) as failure:
        built_db.dbt("test", "--exclude", "test_type:unit")
    failed = set(re.findall(r"Failure in test (\w+)", str(failure.value)))
    for expected in CORRUPTIONS.values():
        assert any(name.startswith(expected) for name in failed), (expected, failed)
