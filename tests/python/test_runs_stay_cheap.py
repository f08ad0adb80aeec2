"""Runs that change nothing cost little and lock nothing: views whose fingerprint is unchanged are not
rebuilt (and rebuilt when anything they are built from changed), the write-back's settings keep dbt's
partial parse, and csinfra's dbt runner keeps dbt's own exit codes and run_results.json."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from conftest import ROOT, TARGET
from creatorstays_infra.ops.dbt import dbt_command, dbt_env, run_dbt

WRITE_BACK = ["run", "--select", "+wb_creator_profiles", "+wb_offers"]
VIEWS = [
    "stg_app__collaborations",
    "stg_app__creator_profiles",
    "stg_app__offers",
    "int_offer_status_changes",
    "int_offers_validated",
    "int_creator_lifecycle",
    "int_creators_derived",
]


def statuses(log: str) -> dict[str, str]:
    """model -> what dbt reported for it (CREATE VIEW, UNCHANGED, SELECT 1 …), from dbt's console lines."""
    found = {}
    for m in re.finditer(
        r"OK created sql \S+ model csinfra\.(\w+) \.+ \[(?:\x1b\[\d+m)?([A-Z][A-Z 0-9]*?)(?:\x1b\[0m)? in ",
        log,
    ):
        found[m.group(1)] = m.group(2)
    return found


def oids(db) -> dict[str, int]:
    with db.connect(autocommit=True) as conn:
        return dict(
            conn.execute(
                "select relname, oid::int from pg_class where relnamespace = 'csinfra'::regnamespace "
                "and relkind = 'v'"
            ).fetchall()
        )


def test_a_second_run_rebuilds_no_view_and_waits_on_no_reader(built_db):
    """After a run, the next one reports every view UNCHANGED and keeps the same objects, even while a
    transaction that read the views (as the online path does) is still open: rebuilding a view needs an
    ACCESS EXCLUSIVE lock, which would wait for that reader (here: fail after lock_timeout)."""
    built_db.dbt(*WRITE_BACK)
    before = oids(built_db)
    with built_db.connect() as reader:
        reader.execute("select count(*) from csinfra.int_creators_derived").fetchone()
        reader.execute(
            "select count(*) from csinfra.stg_app__offers"
        ).fetchone()  # the transaction stays open
        log = TARGET / f"pytest_cheap_{built_db.name}.log"
        proc = run_dbt(
            built_db.target, "public", WRITE_BACK, log_path=log, env={"PGOPTIONS": "-c lock_timeout=3s"}
        )
        rc = proc.wait(timeout=300)
        text = log.read_text()
        log.unlink()
        reader.rollback()
    assert rc == 0, text[-4000:]
    assert {m: s for m, s in statuses(text).items() if m in VIEWS} == dict.fromkeys(VIEWS, "UNCHANGED"), text[
        -4000:
    ]
    assert oids(built_db) == before


def test_what_a_view_is_built_from_changing_rebuilds_it_and_only_what_depends_on_it(built_db):
    built_db.dbt(*WRITE_BACK)
    # a column the models do not read: the staging view over that table is rebuilt (its function's body is
    # checked against the table again), its columns are the same, so nothing downstream is
    with built_db.connect(autocommit=True) as conn:
        conn.execute("alter table offers add column note_for_test text")
    got = statuses(built_db.dbt(*WRITE_BACK))
    assert got["stg_app__offers"] == "CREATE VIEW"
    assert {got[m] for m in VIEWS if m != "stg_app__offers"} == {"UNCHANGED"}, got

    # a retype of a column they read: the staging view's column type changes, so the views reading it are
    # rebuilt too (their stored column types would be stale), and the creators' side is untouched
    with built_db.connect(autocommit=True) as conn:
        conn.execute('alter table offers alter column "cashCents" type bigint')
    got = statuses(built_db.dbt(*WRITE_BACK))
    assert got["stg_app__offers"] == got["int_offers_validated"] == "CREATE VIEW", got
    assert got["stg_app__creator_profiles"] == got["stg_app__collaborations"] == "UNCHANGED", got
    assert (
        built_db.scalar("""select format_type(atttypid, atttypmod) from pg_attribute
                              where attrelid = 'csinfra.int_offers_validated'::regclass and attname = 'cash_cents'""")
        == "bigint"
    )

    # a rule constant changes the compiled SQL of the views that use it, and only theirs
    rules = yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]["csinfra_rules"]
    rules["offer"]["stay_night_value_cents"] += 1
    got = statuses(built_db.dbt(*WRITE_BACK, vars_={"csinfra_rules": rules}))
    assert got["int_offers_validated"] == "CREATE VIEW" and got["stg_app__offers"] == "UNCHANGED", got
    assert got["int_creators_derived"] == "UNCHANGED", got
    built_db.dbt(*WRITE_BACK)  # back to the project's rules
    assert built_db.cli("verify").returncode == 0

    # a view someone dropped (with what depends on it) is built again, and --full-refresh rebuilds all
    with built_db.connect(autocommit=True) as conn:
        conn.execute("drop view csinfra.int_creator_lifecycle cascade")
    got = statuses(built_db.dbt(*WRITE_BACK))
    assert got["int_creator_lifecycle"] != "UNCHANGED" and got["int_creators_derived"] != "UNCHANGED", got
    assert got["int_offers_validated"] == "UNCHANGED", got
    got = statuses(built_db.dbt(*WRITE_BACK, "--full-refresh"))
    assert not {m for m in VIEWS if got[m] == "UNCHANGED"}, got
    assert built_db.cli("verify").returncode == 0


def test_backfill_settings_keep_dbt_partial_parse_where_vars_would_not(built_db):
    """csinfra backfill passes its options through the environment, so dbt keeps its partial parse from one
    run to the next whatever the options; the same settings as --vars make dbt parse the whole project."""
    built_db.cli(
        "backfill", "--write-back-only", check=True
    )  # against this database: the profile may have changed
    manifest = TARGET / "manifest.json"
    manifest_mtime = manifest.stat().st_mtime if manifest.exists() else None
    second = built_db.cli(
        "backfill",
        "--write-back-only",
        "--batch-size",
        "7",
        "--pause",
        "0",
        "--dry-run",
        "--json",
        check=True,
    )
    log = (TARGET / "csinfra_backfill.log").read_text()
    assert "Unable to do partial parsing" not in log, log[:2000]
    # the settings reached the write-back: a dry run (nothing written) with batches of 7
    with built_db.connect(autocommit=True) as conn:
        runs = conn.execute(
            "select model, dry_run, batch_size, status from csinfra.writeback_log "
            "order by started_at desc limit 2"
        ).fetchall()
    assert sorted(runs) == [
        ("wb_creator_profiles", True, 7, "previewed"),
        ("wb_offers", True, 7, "previewed"),
    ], runs
    assert json.loads(second.stdout)["dryRun"] is True
    # dbt's run_results.json is written, the manifest is left alone
    results = json.loads((TARGET / "run_results.json").read_text())
    assert {r["unique_id"].split(".")[-1] for r in results["results"]} >= {"wb_creator_profiles", "wb_offers"}
    assert all(r["status"] == "success" for r in results["results"])
    assert (manifest.stat().st_mtime if manifest.exists() else None) == manifest_mtime
    # the control: the same setting as a dbt var
    log = built_db.dbt(*WRITE_BACK, vars_={"writeback_batch_size": 7})
    assert "Unable to do partial parsing because config vars" in log


def test_runs_that_alternate_vars_each_keep_their_partial_parse(built_db):
    """dbt keeps one partial parse and parses the whole project again whenever --vars differ from the last run's;
    csinfra's runner keeps one per vars and connection (target/partial_parse/), so runs that alternate between
    two sets of vars parse the project only the first time each. Plain dbt, the control, parses it again."""
    first, second = {"marts_as_of": "2026-06-01"}, {"marts_as_of": "2026-06-02"}
    ls = ["ls", "--select", "dim_creators"]
    built_db.dbt(*ls, vars_=first)
    assert "Unable to do partial parsing because config vars" in built_db.dbt(*ls, vars_=second)
    for vars_ in (first, second):
        log = built_db.dbt(*ls, vars_=vars_)
        assert "Unable to do partial parsing" not in log, log[:2000]
        assert ".creators.dim_creators\n" in log  # it did list the model
    assert len(list((TARGET / "partial_parse").glob("*.msgpack"))) >= 2
    # the control: plain dbt reads only target/partial_parse.msgpack, last written by the run that parsed with the
    # other vars (runs since found their copies and parsed nothing)
    plain = subprocess.run(
        dbt_command([*ls, "--vars", json.dumps(first)]),
        check=False,
        env=dbt_env(built_db.target, "public"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.returncode == 0 and "Unable to do partial parsing because config vars" in plain.stdout


def test_an_unknown_backfill_setting_is_refused_naming_it(built_db):
    log = TARGET / f"pytest_cheap_{built_db.name}.log"
    proc = run_dbt(
        built_db.target,
        "public",
        ["run", "--select", "wb_creator_profiles"],
        log_path=log,
        env={"CSINFRA_WRITEBACK_SETTINGS": json.dumps({"writeback_batch_sise": 7})},
    )
    assert proc.wait(timeout=300) == 1
    text = log.read_text()
    log.unlink()
    assert "CSINFRA_WRITEBACK_SETTINGS: unknown setting writeback_batch_sise" in text


def test_csinfra_runs_dbt_with_dbt_own_exit_codes(built_db):
    """The runner ends its process early; its exit code is still the one plain dbt gives for the same
    arguments: a failing data test (1), an on-run-start check that stops the run (2), an unknown option (2)."""
    env = dbt_env(built_db.target, "public")

    def both(args: list[str]) -> tuple[int, int]:
        plain = subprocess.run(
            dbt_command(args), check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        log = TARGET / f"pytest_cheap_{built_db.name}.log"
        ours = run_dbt(built_db.target, "public", args, log_path=log).wait(timeout=300)
        log.unlink()
        return plain.returncode, ours

    with built_db.connect(autocommit=True) as conn:
        conn.execute(
            'update creator_profiles set "profileCompleteness" = 0.5 where id = (select min(id) from creator_profiles)'
        )
    assert both(["test", "--select", "assert_creators_stored_equal_derived"]) == (1, 1)
    with built_db.connect(autocommit=True) as conn:
        conn.execute("alter table creator_profiles rename column bio to about")
    assert both(["run", "--select", "stg_app__creator_profiles"]) == (2, 2)
    assert both(["run", "--no-such-option"]) == (2, 2)


def test_documentation_reaches_the_database_only_where_it_changed(marts_db, tmp_path, monkeypatch):
    """persist_docs (macros/persist_docs.sql): dbt-postgres comments a model and each of its columns at every build,
    incremental ones too, and COMMENT takes the lock autovacuum holds (the build waits deadlock_timeout, then cancels
    the vacuum). Ours comments only what differs from the stored comments: nothing when the docs did not change,
    exactly the changed description when one did."""
    from conftest import copy_project

    db, model = marts_db, "fct_creator_activation"
    run = ("--debug", "run", "--select", model, "--vars", '{"marts_as_of": "2026-11-27 00:00:00"}')

    def comments(log: str) -> list[str]:
        return re.findall(rf'comment on (?:column|table) "[^"]+"\."[^"]+"\."{model}"[^\n]*', log)

    assert comments(db.dbt(*run)) == []
    project = copy_project(tmp_path / "project")
    docs = project / "models" / "marts" / "creators" / "_creators__models.yml"
    text = docs.read_text()
    old = "Monday of signed_up_at's ISO week; the cohort of rpt_creator_activation_by_signup_week."
    assert text.count(old) >= 1
    docs.write_text(text.replace(old, "The signup cohort's Monday (ISO week).", 1))
    monkeypatch.setenv("CSINFRA_PROJECT_DIR", str(project))
    written = comments(db.dbt(*run))
    assert len(written) == 1 and ".signup_week is" in written[0], written
    stored = db.scalar(
        """select col_description(c.oid, a.attnum) from pg_class as c join pg_attribute as a on a.attrelid = c.oid
           where c.relname = %s and a.attname = 'signup_week'""",
        (model,),
    )
    assert stored == "The signup cohort's Monday (ISO week)."
    assert comments(db.dbt(*run)) == []


def test_tables_rebuilt_each_run_are_analyzed_and_left_out_of_autovacuum(marts_db):
    """A mart materialized as a table is replaced whole at every build: autovacuum would only race the next build's
    rename (1 s of deadlock_timeout, then the vacuum is cancelled), so it is off for them, and the build analyzes
    them itself (reltuples is set: -1 until a table is first analyzed). The incremental marts, updated in place, keep
    autovacuum."""
    with marts_db.connect(autocommit=True) as conn:
        found = dict(
            conn.execute(
                """select c.relname, coalesce(array_to_string(c.reloptions, ','), '') || '|' ||
                          (c.reltuples >= 0)::text
                   from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
                   where n.nspname = 'csinfra' and c.relkind = 'r' and c.relname in (
                       'rpt_creator_search_ranking', 'rpt_readiness_blockers', 'rpt_trust_tier_distribution_daily',
                       'fct_offer_funnel', 'dim_creators')"""
            ).fetchall()
        )
    for table in (
        "rpt_creator_search_ranking",
        "rpt_readiness_blockers",
        "rpt_trust_tier_distribution_daily",
    ):
        assert found[table] == "autovacuum_enabled=false|true", (table, found[table])
    for table in ("fct_offer_funnel", "dim_creators"):
        assert "autovacuum_enabled" not in found[table], (table, found[table])
