"""Compare the marts built on PostgreSQL with the same marts built on Spark from the lake, row for row.

    python -m creatorstays_infra.ops.marts_compare --spark-warehouse DIR [--schema csinfra] [--tolerance 1e-9]

PostgreSQL is the database the libpq variables name; the Spark tables are read from their Parquet files in the
warehouse directory (DIR/<schema>.db/<table>), so no Spark session is needed. Exit 1 on any difference."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.dataset as ds
from psycopg import sql

from .marts import MART_MODELS


def normal(value, tolerance: float):
    """A value in a form both engines agree on: numbers as floats rounded to the tolerance, JSON text parsed,
    timestamps naive, lists as tuples."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        f = float(value)
        digits = max(0, -int(f"{tolerance:e}".split("e")[1]))
        return round(f, digits) + 0.0
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return normal(json.loads(value), tolerance)
        except ValueError:
            return value
    if isinstance(value, dict):
        return tuple(sorted((k, normal(v, tolerance)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(normal(v, tolerance) for v in value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return value
    return value


def warehouse_table_path(warehouse: Path, schema: str, table: str) -> Path:
    """Where Spark's warehouse keeps a managed table's Parquet files: DIR/<schema>.db/<table>."""
    return warehouse / f"{schema}.db" / table


def _partitioning(path: Path) -> ds.Partitioning | None:
    """The Hive-style partitioning of a Spark table's directory (`<column>=<value>/`, one level, as the event models
    have): the column typed as a date when every value is a day (pyarrow would read it as text), else as text."""
    values = [
        d.name.split("=", 1) for d in path.iterdir() if d.is_dir() and "=" in d.name and d.name[0] not in "._"
    ]
    if not values:
        return None
    name = values[0][0]
    days = all(DAY.match(v) or v == HIVE_NULL for _, v in values)
    return ds.partitioning(pa.schema([(name, pa.date32() if days else pa.string())]), flavor="hive")


def warehouse_rows(warehouse: Path, schema: str, table: str) -> tuple[list[str], list[dict]]:
    """A table of Spark's warehouse read from its Parquet files with pyarrow (its day partitions' column included,
    hidden and _-prefixed files ignored): its column names and its rows as dicts."""
    path = warehouse_table_path(warehouse, schema, table)
    data = ds.dataset(path, format="parquet", partitioning=_partitioning(path))
    table_ = data.to_table()
    return table_.column_names, table_.to_pylist()


def rows_of(columns, rows, tolerance):
    return sorted((tuple(normal(r[c], tolerance) for c in columns) for r in rows), key=repr)


DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# The day partition columns the event models have on Spark only (csinfra_events_day_column): not compared.
SPARK_ONLY_COLUMNS = {
    "int_funnel_milestones_recorded": {"first_recorded_on"},
    "int_creator_trust_tier_changes": {"changed_on"},
}


def compare(
    conn: psycopg.Connection,
    schema: str,
    warehouse: Path,
    tolerance: float,
    tables: tuple[str, ...] = MART_MODELS,
) -> dict[str, str]:
    """Per table (the marts, or `tables`) that differs between PostgreSQL and Spark's warehouse: how."""
    problems = {}
    for mart in tables:
        cur = conn.execute(sql.SQL("select * from {}").format(sql.Identifier(schema, mart)))
        pg_columns = [d.name for d in cur.description]
        pg_rows = [dict(zip(pg_columns, r, strict=True)) for r in cur.fetchall()]
        spark_columns, spark_rows = warehouse_rows(warehouse, schema, mart)
        spark_columns = [c for c in spark_columns if c not in SPARK_ONLY_COLUMNS.get(mart, ())]
        if set(spark_columns) != set(pg_columns):
            problems[mart] = f"columns differ: {sorted(set(spark_columns) ^ set(pg_columns))}"
            continue
        a, b = rows_of(pg_columns, pg_rows, tolerance), rows_of(pg_columns, spark_rows, tolerance)
        if a != b:
            only_pg = [r for r in a if r not in b][:3]
            only_spark = [r for r in b if r not in a][:3]
            problems[mart] = (
                f"{len(a)} vs {len(b)} rows; only on PostgreSQL {only_pg}; only on Spark {only_spark}"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spark-warehouse", type=Path, required=True)
    parser.add_argument("--schema", default="csinfra")
    parser.add_argument("--tolerance", type=float, default=1e-9)
    args = parser.parse_args()
    with psycopg.connect() as conn:
        problems = compare(conn, args.schema, args.spark_warehouse, args.tolerance)
    for mart, problem in problems.items():
        print(f"{mart}: {problem}")
    print("identical" if not problems else f"{len(problems)} mart(s) differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
