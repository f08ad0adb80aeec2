"""`make mutation`: proves the suite bites. Each mutation changes one thing in a scratch copy of the repository
(a rule constant, a message, a column's nullability, the blockers' order), then runs the tests that should notice;
a mutation no test kills is a hole in the suite. Prints what each mutation killed; exits 1 when one survives.

The copy shares this checkout's virtualenv and embedded server (CSINFRA_STATE_DIR); tests create their own
databases. Run it when nothing else is testing against the same server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPIED = (
    "dbt_project.yml",
    "profiles.yml",
    "selectors.yml",
    "pyproject.toml",
    "models",
    "macros",
    "seeds",
    "scripts",
    "src",
    "tests",
    "docs",
)


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository
    old: str  # exact text replaced (must occur)
    new: str
    tests: tuple[str, ...]  # pytest node ids or files that should fail


MUTATIONS = (
    Mutation(
        "rule constant: VERIFIED needs completeness 0.7 instead of 0.8",
        "dbt_project.yml",
        "verified_min_completeness: 0.8",
        "verified_min_completeness: 0.7",
        ("tests/python/test_readiness_helpers.py", "tests/python/test_creators_online.py"),
    ),
    Mutation(
        "message: the first validation error reworded",
        "seeds/offer_validation_errors.csv",
        "Offer value must be at least $100",
        "Offer value must be at least 100 dollars",
        ("tests/python/test_offers.py",),
    ),
    Mutation(
        "nullability: audit_logs.actorId NULL-able",
        "scripts/migrations/20260203_infrastructure_phase1/migration.sql",
        '"actorId" TEXT NOT NULL,',
        '"actorId" TEXT,',
        ("tests/python/test_phase1_schema.py",),
    ),
    Mutation(
        "blocker order: the bio's blocker before the handle's",
        "seeds/creator_blockers.csv",
        "missing_handle,2,handle,Set your handle,false\nmissing_bio,3,bio,Write a bio,false",
        "missing_handle,3,handle,Set your handle,false\nmissing_bio,2,bio,Write a bio,false",
        ("tests/python/test_readiness_helpers.py", "tests/python/test_creators_online.py"),
    ),
)


def scratch_copy(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "target")
            )
        else:
            shutil.copy2(src, dest / name)


def run(mutation: Mutation) -> tuple[bool, list[str], float]:
    with tempfile.TemporaryDirectory(prefix="csinfra-mutation-") as tmp:
        copy = Path(tmp)
        scratch_copy(copy)
        target = copy / mutation.path
        text = target.read_text()
        if mutation.old not in text:
            raise SystemExit(
                f"{mutation.name}: {mutation.path} no longer holds {mutation.old!r}; update the mutation"
            )
        target.write_text(text.replace(mutation.old, mutation.new, 1))
        env = {
            **os.environ,
            "PYTHONPATH": str(copy / "src"),
            "CSINFRA_PROJECT_DIR": str(copy),
            "CSINFRA_STATE_DIR": os.environ.get("CSINFRA_STATE_DIR", str(ROOT / ".csinfra")),
            "HYPOTHESIS_PROFILE": "ci",
        }
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *mutation.tests],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        failed = sorted(set(re.findall(r"^FAILED (\S+)", result.stdout, flags=re.MULTILINE)))
        return result.returncode != 0 and bool(failed), failed, time.monotonic() - started


def main() -> int:
    survived = 0
    for mutation in MUTATIONS:
        killed, failed, seconds = run(mutation)
        verdict = "killed" if killed else "SURVIVED"
        print(f"{verdict:8} {mutation.name} ({seconds:.0f} s)")
        for test in failed:
            print(f"           by {test}")
        survived += not killed
    print(f"{len(MUTATIONS) - survived} of {len(MUTATIONS)} mutations killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
