"""Running dbt against the resolved database (a subprocess, so its memory is not ours).

dbt runs through `_dbt_entry.py`: dbt's own command line (the same arguments, output and exit codes),
minus Python's interpreter teardown, which takes about half a second after every dbt command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .. import settings
from .database import Target, project_root

# `dbt build` restricted to loading the seeds (the rules' catalogs) and running the models: what
# `dbt seed && dbt run` does, in one invocation and in the DAG's order. No test runs.
LOAD_AND_RUN = ["--resource-type", "seed", "--resource-type", "model"]


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def dbt_env(target: Target, app_schema: str) -> dict[str, str]:
    """The environment `profiles.yml` reads: libpq variables plus our schema names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(target.libpq_env())
    env["CSINFRA_APP_SCHEMA"] = app_schema
    env["CSINFRA_SCHEMA"] = settings.dbt_schema()
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def dbt_arguments(args: list[str], vars_: dict | None = None) -> list[str]:
    root = str(project_root())
    out = [*args, "--project-dir", root, "--profiles-dir", root]
    if vars_:
        out += ["--vars", json.dumps(vars_)]
    return out


def dbt_command(args: list[str], vars_: dict | None = None) -> list[str]:
    """The plain `dbt …` command line (what an operator types)."""
    return [dbt_executable(), *dbt_arguments(args, vars_)]


def run_dbt(
    target: Target,
    app_schema: str,
    args: list[str],
    vars_: dict | None = None,
    log_path: Path | None = None,
    manifest: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start dbt (through _dbt_entry.py); its output goes to `log_path` (or is inherited when None).
    `manifest=False` skips rewriting target/manifest.json (twice per command, about 0.3 s; a plain
    `dbt parse` or any other dbt command writes it); run_results.json is written either way. `env` adds
    environment variables (settings read while the models run, which, unlike --vars, keep dbt's partial
    parse: a change of --vars makes dbt parse the whole project again, about 2.5 s)."""
    out = open(log_path, "w") if log_path else None  # noqa: SIM115 (closed by the caller via proc.wait)
    entry = [sys.executable, str(Path(__file__).with_name("_dbt_entry.py"))]
    if not manifest:
        entry.append("--csinfra-results-only")
    return subprocess.Popen(
        [*entry, *dbt_arguments(args, vars_)],
        env={**dbt_env(target, app_schema), **(env or {})},
        cwd=str(project_root()),
        stdout=out or None,
        stderr=subprocess.STDOUT if out else None,
        text=True,
    )


def run_results(since: float = 0.0) -> list[dict]:
    """The results of the last dbt invocation, from dbt's own target/run_results.json (when it was written after
    `since`, a time.time(): dbt writes none when it stops before running anything)."""
    path = settings.dbt_target_dir() / "run_results.json"
    try:
        if path.stat().st_mtime < since:
            return []
        return list(json.loads(path.read_text()).get("results", []))
    except (OSError, ValueError):
        return []


# run_results statuses → the counters of dbt's closing line (Done. PASS=… WARN=… ERROR=… SKIP=… NO-OP=… TOTAL=…)
_SUMMARY_KEYS = {
    "success": "pass",
    "pass": "pass",
    "warn": "warn",
    "error": "error",
    "fail": "error",
    "runtime error": "error",
    "skipped": "skip",
    "no-op": "no_op",
}


def summary(results: list[dict]) -> dict[str, int]:
    """Counts as dbt's closing line gives them: pass, warn, error, skip, no_op, total."""
    counts = {"pass": 0, "warn": 0, "error": 0, "skip": 0, "no_op": 0}
    for r in results:
        key = _SUMMARY_KEYS.get(str(r.get("status")), "error")
        counts[key] += 1
    counts["total"] = len(results)
    return counts


def test_summary(results: list[dict]) -> dict:
    """The data tests among the results (unique_id test.…): how many passed, warned, failed (a failure or an
    error) or were skipped, and the names of the failing ones."""
    tests = [r for r in results if str(r.get("unique_id", "")).startswith("test.")]
    counts = {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
    failed = []
    for r in tests:
        status = str(r.get("status"))
        key = {"pass": "pass", "warn": "warn", "skipped": "skip"}.get(status, "fail")
        counts[key] += 1
        if key == "fail":
            failed.append(str(r["unique_id"]).split(".")[2])
    return {**counts, "total": len(tests), "failed": sorted(failed)}
