"""The lake export: every exported row equals the database's, only the source columns leave (no secret, e-mail or
IP address anywhere in the files), one consistent snapshot under ACCESS SHARE only, incremental by day with the
lookback, and a killed run leaves the previous export intact and is repaired by the next."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from creatorstays_infra.ops import lake as lake_mod

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("users", "creator_profiles", "offers", "collaborations", "audit_logs", "analytics_events")


def read_table(lake: Path, table: str):
    return ds.dataset(lake / table, format="parquet", partitioning="hive").to_table()


def db_count(db, table: str) -> int:
    return db.scalar(f'select count(*) from public."{table}"')


def export(db, lake: Path, **kw):
    with db.connect() as conn:
        return lake_mod.export(conn, "public", lake, **kw)


def test_the_export_holds_every_row_and_only_the_sources_columns(marts_db, tmp_path):
    lake = tmp_path / "lake"
    result = export(marts_db, lake)
    declared = {
        t["name"]: [c["name"] for c in t["columns"]]
        for t in yaml.safe_load((ROOT / "models/staging/app/_app__sources.yml").read_text())["sources"][0][
            "tables"
        ]
    }
    assert set(result.tables) == set(TABLES) == set(declared)
    for table in TABLES:
        data = read_table(lake, table)
        columns = [c for c in data.column_names if c != lake_mod.PARTITION]
        assert columns == declared[table], table
        assert data.num_rows == db_count(marts_db, table) > 0, table
        assert result.tables[table].rows == data.num_rows
    # values, not only counts: the offers' ids and money, and one event table's ids, equal the database's
    offers = read_table(lake, "offers").to_pydict()
    with marts_db.connect() as conn:
        want = dict(conn.execute('select id, "cashCents" from offers').fetchall())
        events = {r[0] for r in conn.execute("select id from analytics_events")}
    assert dict(zip(offers["id"], offers["cashCents"], strict=True)) == want
    assert set(read_table(lake, "analytics_events").column("id").to_pylist()) == events
    # event tables: one directory per day, each holding that day's rows only
    audit = read_table(lake, "audit_logs").to_pydict()
    assert all(
        str(day) == created.date().isoformat()
        for day, created in zip(audit[lake_mod.PARTITION], audit["createdAt"], strict=True)
    )
    manifest = json.loads((lake / "_manifest.json").read_text())
    assert manifest["tables"]["offers"]["rows"] == len(want)
    assert manifest["runs"][-1]["runId"] == result.run_id


def test_no_secret_email_or_ip_address_leaves_the_database(marts_db, tmp_path):
    """Every string in every file (JSON text included) is compared with every secret the database holds."""
    with marts_db.connect() as conn:
        secrets = {
            v
            for (v,) in conn.execute(
                """select email from users
                   union select "instagramAccessToken" from creator_profiles
                   union select "tiktokAccessToken" from creator_profiles
                   union select "tiktokRefreshToken" from creator_profiles
                   union select "actorEmail" from audit_logs
                   union select "ipAddress" from audit_logs
                   union select "userAgent" from audit_logs"""
            )
            if v
        }
    assert len(secrets) > 100  # the demo data has them: the scan below can fail
    lake = tmp_path / "lake"
    export(marts_db, lake)
    files = sorted(lake.rglob("*.parquet"))
    assert files
    leaked = set()
    for path in files:
        table = pq.read_table(path)
        assert not {"email", "actorEmail", "ipAddress", "userAgent"} & set(table.column_names)
        assert not [c for c in table.column_names if "Token" in c]
        for column in table.itercolumns():
            for value in column.to_pylist():
                for text in value if isinstance(value, list) else [value]:
                    if isinstance(text, str) and (
                        text in secrets or any(s in text for s in secrets if len(s) > 8)
                    ):
                        leaked.add(text)
    assert leaked == set()


def test_one_snapshot_and_access_share_only(marts_db, tmp_path):
    """While the export's transaction is open: its locks are ACCESS SHARE only, and rows committed meanwhile are not
    in the export (REPEATABLE READ: every table as of one moment)."""
    lake = tmp_path / "lake"
    seen: dict[str, object] = {}
    before = db_count(marts_db, "offers")

    def during(table: str) -> None:
        if table != "users":
            return
        with marts_db.connect(autocommit=True) as other:
            seen["locks"] = other.execute(
                """select distinct mode from pg_locks l join pg_stat_activity a using (pid)
                   where l.locktype = 'relation' and a.datname = current_database()
                   and a.application_name = 'csinfra-lake-test'"""
            ).fetchall()
            other.execute(
                """insert into offers (id, "hostProfileId", "creatorProfileId", "offerType", "cashCents", deliverables,
                   "updatedAt") select 'during_export', "hostProfileId", "creatorProfileId", 'cash', 1, '{a}', now()
                   from offers limit 1"""
            )

    with marts_db.connect(application_name="csinfra-lake-test") as conn:
        lake_mod.export(conn, "public", lake, pause_after_table=during)
    assert seen["locks"] == [("AccessShareLock",)]
    assert db_count(marts_db, "offers") == before + 1  # committed during the export …
    assert (
        read_table(lake, "offers").num_rows == before
    )  # … and not in it: the snapshot is the export's start


def test_incremental_rewrites_the_days_since_the_watermark_minus_the_lookback(marts_db, tmp_path):
    lake = tmp_path / "lake"
    first = export(marts_db, lake, lookback=timedelta(days=3))
    assert first.tables["analytics_events"].mode == "full"
    newest = datetime.fromisoformat(first.tables["analytics_events"].watermark)
    old_files = {
        f for f in first.tables["analytics_events"].files if f"={(newest - timedelta(days=10)).date()}" in f
    }

    def insert(event_id: str, at: datetime) -> None:
        with marts_db.connect() as conn:
            conn.execute(
                """insert into analytics_events (id, "actorType", "actorId", "eventType", "eventData", "createdAt")
                   values (%s, 'host', 'h', 'profile_viewed', '{"creatorProfileId": "c", "source": "search"}', %s)""",
                (event_id, at),
            )
            conn.commit()

    insert("ev_new", newest + timedelta(hours=1))  # new
    insert("ev_late", newest - timedelta(days=2))  # arrives late, inside the lookback
    insert("ev_too_late", newest - timedelta(days=9))  # older than the lookback: only --full picks it up
    second = export(marts_db, lake, lookback=timedelta(days=3))
    t = second.tables["analytics_events"]
    assert t.mode == "incremental"
    assert min(t.days) == (newest - timedelta(days=3)).date().isoformat()
    ids = set(read_table(lake, "analytics_events").column("id").to_pylist())
    assert {"ev_new", "ev_late"} <= ids and "ev_too_late" not in ids
    assert len(ids) == db_count(marts_db, "analytics_events") - 1
    # days before the window were not rewritten: their files are the first run's
    assert old_files and old_files <= set(t.files)
    # running again changes nothing but the run id in the files' names
    third = export(marts_db, lake, lookback=timedelta(days=3))
    assert third.tables["analytics_events"].rows == t.rows
    assert set(read_table(lake, "analytics_events").column("id").to_pylist()) == ids
    full = export(marts_db, lake, full=True)
    assert full.tables["analytics_events"].mode == "full"
    assert "ev_too_late" in set(read_table(lake, "analytics_events").column("id").to_pylist())
    assert read_table(lake, "analytics_events").num_rows == db_count(marts_db, "analytics_events")


def test_a_killed_export_leaves_the_last_one_and_the_next_run_repairs(marts_db, tmp_path):
    lake = tmp_path / "lake"
    export(marts_db, lake)
    manifest = (lake / "_manifest.json").read_text()
    files = sorted(str(p.relative_to(lake)) for p in lake.rglob("*.parquet"))

    def killed(table: str) -> None:
        if table == "offers":
            raise KeyboardInterrupt  # the operator's Ctrl-C (a SIGKILL leaves the same temp files: see below)

    with marts_db.connect(autocommit=True) as conn:
        conn.execute("""update offers set "cashCents" = "cashCents" + 1""")
    with marts_db.connect() as conn, pytest.raises(KeyboardInterrupt):
        lake_mod.export(conn, "public", lake, pause_after_table=killed)
    assert (lake / "_manifest.json").read_text() == manifest
    assert sorted(str(p.relative_to(lake)) for p in lake.rglob("*.parquet")) == files
    assert not list(lake.rglob(".tmp-*"))
    # what a SIGKILL during the commit leaves: a temp directory, a stray file, a file of the manifest gone
    (lake / "offers" / ".tmp-dead").mkdir()
    (lake / "offers" / ".tmp-dead" / "part-dead-00000.parquet").write_bytes(b"partial")
    (lake / "users" / "part-stray-00000.parquet").write_bytes(b"stray")
    audit_file = next(f for f in json.loads(manifest)["tables"]["audit_logs"]["files"])
    (lake / audit_file).unlink()
    again = export(marts_db, lake)
    assert (
        not (lake / "offers" / ".tmp-dead").exists()
        and not (lake / "users" / "part-stray-00000.parquet").exists()
    )
    assert again.tables["audit_logs"].mode == "full"  # its files did not match the manifest: exported whole
    for table in TABLES:
        assert read_table(lake, table).num_rows == db_count(marts_db, table), table
    offers = read_table(lake, "offers").to_pydict()
    with marts_db.connect() as conn:
        assert dict(zip(offers["id"], offers["cashCents"], strict=True)) == dict(
            conn.execute('select id, "cashCents" from offers').fetchall()
        )


def test_a_second_export_of_the_same_lake_is_refused_while_one_runs(marts_db, tmp_path):
    lake = tmp_path / "lake"
    errors = []

    def nested(table: str) -> None:
        if table == "users":
            with marts_db.connect() as conn2:
                try:
                    lake_mod.export(conn2, "public", lake)
                except lake_mod.LakeError as exc:
                    errors.append(str(exc))

    with marts_db.connect() as conn:
        lake_mod.export(conn, "public", lake, pause_after_table=nested)
    assert errors == [f"another export is writing {lake}"]


def test_the_cli_reports_throughput(marts_db, tmp_path):
    result = marts_db.cli("lake", "export", "--lake", str(tmp_path / "lake"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == sum(db_count(marts_db, t) for t in TABLES)
    assert summary["bytes"] == sum(p.stat().st_size for p in (tmp_path / "lake").rglob("*.parquet"))
    assert summary["rowsPerSecond"] > 0
    bad = marts_db.cli("lake", "export", "--lake", str(tmp_path / "lake"), "--lookback", "3 fortnights")
    assert bad.returncode == 2 and "lookback" in bad.stderr
