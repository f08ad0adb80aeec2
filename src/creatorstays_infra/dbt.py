"""Running dbt against the resolved database (a subprocess, so its memory is not ours)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from . import settings
from .database import Target, project_root


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


def dbt_command(args: list[str], vars_: dict | None = None) -> list[str]:
    root = str(project_root())
    cmd = [dbt_executable(), *args, "--project-dir", root, "--profiles-dir", root]
    if vars_:
        cmd += ["--vars", json.dumps(vars_)]
    return cmd


def run_dbt(target: Target, app_schema: str, args: list[str], vars_: dict | None = None,
            log_path: Path | None = None) -> subprocess.Popen:
    """Start dbt; its output goes to `log_path` (or is inherited when None)."""
    out = open(log_path, "w") if log_path else None  # noqa: SIM115 (closed by the caller via proc.wait)
    return subprocess.Popen(
        dbt_command(args, vars_),
        env=dbt_env(target, app_schema),
        cwd=str(project_root()),
        stdout=out or None,
        stderr=subprocess.STDOUT if out else None,
        text=True,
    )
