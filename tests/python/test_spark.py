"""The marts on Apache Spark (local mode) from the lake export, built from the same SQL as on PostgreSQL, equal the
PostgreSQL marts row for row (numbers to 1e-9, JSON compared parsed)."""

from __future__ import annotations

import json

from psycopg import sql

from creatorstays_infra.ops import marts_compare
from creatorstays_infra.ops.dbt import LOAD_AND_RUN
from creatorstays_infra.ops.marts import MART_MODELS

AS_OF = "2026-11-28 00:00:00"


def test_the_marts_on_spark_equal_the_marts_on_postgresql(marts_db, tmp_path):
    lake, spark = tmp_path / "lake", tmp_path / "spark"
    env = {"CSINFRA_SPARK_DIR": str(spark)}
    exported = marts_db.cli("lake", "export", "--lake", str(lake), "--json", env=marts_db.env(**env))
    assert exported.returncode == 0, exported.stderr
    built = marts_db.cli(
        "marts",
        "--engine",
        "spark",
        "--lake",
        str(lake),
        "--as-of",
        AS_OF,
        "--json",
        env=marts_db.env(**env),
        timeout=900,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    summary = json.loads(built.stdout)
    assert summary["engine"] == "spark" and summary["dbt"].get("error", 0) == 0
    # the same marts on PostgreSQL, at the same moment
    marts_db.dbt("build", *LOAD_AND_RUN, "--selector", "marts", vars_={"marts_as_of": AS_OF})
    with marts_db.connect() as conn:
        counts = {
            m: conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier("csinfra", m))
            ).fetchone()[0]
            for m in MART_MODELS
        }
        problems = marts_compare.compare(conn, "csinfra", spark / "warehouse", 1e-9)
    assert problems == {}
    assert all(n > 0 for n in counts.values()), counts
    # and the comparison bites: the PostgreSQL marts at another moment differ from Spark's
    marts_db.dbt("build", *LOAD_AND_RUN, "--selector", "marts", vars_={"marts_as_of": "2026-10-01"})
    with marts_db.connect() as conn:
        assert marts_compare.compare(conn, "csinfra", spark / "warehouse", 1e-9) != {}
