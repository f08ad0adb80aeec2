"""The catalogs are dbt seeds that the SQL models and the Python library both read: a changed catalog reaches
both on the next `csinfra backfill` (or `dbt build`), and a plain `dbt run` refuses to compile the rules against
a catalog whose file changed since it was loaded."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from psycopg.rows import dict_row

from conftest import copy_project, rewrite_seed
from creatorstays_infra import blocker_messages, compute_readiness
from creatorstays_infra.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]


def test_python_reads_the_seed_files():
    """The library's catalogs are the CSV files, row for row (read here with the csv module, not our loader)."""
    with (ROOT / "seeds" / "creator_blockers.csv").open(newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["display_order"]))
    rules = load_rules()
    assert [b.code for b in rules.creator.blockers] == [r["blocker_code"] for r in rows]
    assert rules.blocker_messages == {r["blocker_code"]: r["message"] for r in rows}
    assert rules.creator.oauth_blocker == next(
        r["blocker_code"] for r in rows if r["is_oauth_blocker"] == "true"
    )
    with (ROOT / "seeds" / "offer_status_transitions.csv").open(newline="") as f:
        pairs = {(r["from_status"], r["to_status"]) for r in csv.DictReader(f)}
    assert {(a, b) for a, targets in rules.offer.transitions.items() for b in targets} == pairs


def test_a_changed_catalog_reaches_sql_and_python_on_the_next_run(built_db, tmp_path, monkeypatch):
    project = copy_project(tmp_path / "project")
    # a creator held back by both the handle and the bio (blank text counts as missing)
    with built_db.connect() as conn:
        blank = "\u2002\u3000\t\u2002"  # unique (the handle is), and blank: only characters trim() strips
        cid = conn.execute(
            """update creator_profiles set handle = %s, bio = ''
                              where id = (select min(id) from creator_profiles) returning id""",
            (blank,),
        ).fetchone()[0]
    built_db.backfill()
    before = built_db.scalar("""select "readinessBlockers" from creator_profiles where id = %s""", (cid,))
    assert before.index("missing_handle") < before.index("missing_bio"), before

    # the bio's blocker moves before the handle's and gets a new message, in the copy's CSV only
    def change(row):
        if row["blocker_code"] == "missing_bio":
            row["display_order"], row["message"] = "2", "Tell hosts about yourself"
        elif row["blocker_code"] == "missing_handle":
            row["display_order"] = "3"

    rewrite_seed(project, "creator_blockers", change)
    monkeypatch.setenv("CSINFRA_PROJECT_DIR", str(project))

    # Python reads the file as it is now
    assert [b.code for b in load_rules().creator.blockers][1:3] == ["missing_bio", "missing_handle"]
    assert blocker_messages(["missing_bio"]) == ["Tell hosts about yourself"]
    profile = {
        "displayName": "A",
        "handle": " ",
        "bio": "",
        "niches": ["x"],
        "deliverables": ["y"],
        "minimumFlatFee": 100,
        "instagramConnected": True,
    }
    assert compute_readiness(profile).readiness_blockers == ["missing_bio", "missing_handle"]

    # plain `dbt run` against the catalog loaded before: refused, naming the file
    with pytest.raises(AssertionError) as refused:
        built_db.dbt("run", "--select", "int_creators_derived")
    assert "seeds/creator_blockers.csv changed since it was loaded" in str(refused.value)

    # `csinfra backfill` loads the catalog, then the rules compile from it
    result = built_db.cli("backfill", "--write-back-only", env=built_db.env(CSINFRA_PROJECT_DIR=str(project)))
    assert result.returncode == 0, result.stdout + result.stderr
    after = built_db.scalar("""select "readinessBlockers" from creator_profiles where id = %s""", (cid,))
    assert after.index("missing_bio") < after.index("missing_handle"), after
    # the stored blockers are what the library computes from the same row with the same catalog
    with built_db.connect() as conn:
        conn.row_factory = dict_row
        row = conn.execute(
            """select "displayName", handle, bio, niches, deliverables, "minimumFlatFee", "avatarUrl",
                                     "instagramConnected", "tiktokConnected", "firstCollabCompletedAt"
                              from creator_profiles where id = %s""",
            (cid,),
        ).fetchone()
    assert after == compute_readiness(row).readiness_blockers
    assert built_db.scalar(
        "select message from csinfra.creator_blockers where blocker_code = 'missing_bio'"
    ) == ("Tell hosts about yourself")
    verify = built_db.cli("verify", env=built_db.env(CSINFRA_PROJECT_DIR=str(project)))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # and the repository's own catalog, loaded again, puts the order back
    monkeypatch.delenv("CSINFRA_PROJECT_DIR")
    built_db.cli("backfill", "--write-back-only", check=True)
    restored = built_db.scalar("""select "readinessBlockers" from creator_profiles where id = %s""", (cid,))
    assert restored.index("missing_handle") < restored.index("missing_bio"), restored
