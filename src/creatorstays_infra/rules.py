"""The rules, read from the files the dbt project reads, so SQL and Python have one source each:

- the catalogs are dbt seeds (`seeds/*.csv`): blockers with their messages and order, the offer validation
  errors, offer statuses and transitions, the actors of a status change, collaboration statuses, trust
  tiers with their order and search score, readiness states and funnel milestones;
- the thresholds and weights are `vars.csinfra_rules` in dbt_project.yml.

CSINFRA_PROJECT_DIR locates the project when the package is installed elsewhere.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigurationError
from .settings import project_root

# The profile checks a blocker can name; the SQL macros (macros/rules/creator_rules.sql) know the same.
PROFILE_CHECKS = ("display_name", "handle", "bio", "niches", "deliverables", "minimum_rate", "oauth")
# The validation errors whose conditions the code implements (docs/rules.md §5).
OFFER_ERROR_CODES = (
    "min_total_value",
    "min_cash_without_stay",
    "max_deliverables",
    "no_deliverables",
    "traffic_bonus_threshold",
    "traffic_bonus_amount",
)


@dataclass(frozen=True)
class OfferRules:
    stay_night_value_cents: int
    min_total_value_cents: int
    min_cash_without_stay_cents: int
    max_deliverables: int
    expiry_days_default: int
    expiry_days_min: int
    expiry_days_max: int
    messages: dict[str, str]  # error code -> message, in display order
    statuses: tuple[str, ...]
    transitions: dict[str, tuple[str, ...]]
    creator_responses: tuple[str, ...]
    changed_by: tuple[str, ...]


@dataclass(frozen=True)
class Blocker:
    code: str
    check: str  # the profile check that must hold (one of PROFILE_CHECKS)
    message: str


@dataclass(frozen=True)
class CreatorRules:
    blockers: tuple[Blocker, ...]  # in display order
    oauth_blocker: str  # the blocker that alone still allows PENDING_OAUTH
    completeness_weights: dict[str, float]
    verified_min_completeness: float
    trust_tiers: dict[str, float]  # tier -> search score, in tier order (lowest first)
    readiness_states: tuple[str, ...]


@dataclass(frozen=True)
class Rules:
    offer: OfferRules
    creator: CreatorRules
    blocker_messages: dict[str, str]  # blocker code -> display message, in order
    trim_characters: str
    collaboration_statuses: tuple[str, ...]
    collaboration_completed: tuple[str, ...]
    funnel_milestones: tuple[tuple[str, str], ...]  # (subject_type, milestone), in order


def _require(mapping: dict, key: str, where: str) -> Any:
    if key not in mapping:
        raise ConfigurationError(f"dbt_project.yml vars.csinfra_rules{where} has no {key!r}")
    return mapping[key]


def read_seed(seeds: Path, name: str, columns: tuple[str, ...], order_by: str | None = None) -> list[dict]:
    """The rows of seeds/<name>.csv (every value text), checked for the columns the rules need."""
    path = seeds / f"{name}.csv"
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the catalog {path}: {exc.strerror} (set CSINFRA_PROJECT_DIR)"
        ) from None
    for i, row in enumerate(rows, start=2):
        for col in columns:
            if not (row.get(col) or "").strip():
                raise ConfigurationError(f"{path}, line {i}: {col} is empty")
    if not rows:
        raise ConfigurationError(f"{path} has no rows")
    if order_by:
        try:
            rows.sort(key=lambda row: int(row[order_by]))
        except ValueError as exc:
            raise ConfigurationError(f"{path}: {order_by} must be a whole number ({exc})") from None
    return rows


def _flag(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise ConfigurationError(f"{where}: expected true or false, got {value!r}")
    return v == "true"


def parse_rules(raw: dict, seeds: Path) -> Rules:
    offer = _require(raw, "offer", "")
    creator = _require(raw, "creator", "")

    blocker_rows = read_seed(
        seeds,
        "creator_blockers",
        ("blocker_code", "display_order", "profile_check", "message"),
        "display_order",
    )
    blockers = tuple(Blocker(r["blocker_code"], r["profile_check"], r["message"]) for r in blocker_rows)
    unknown = [b.check for b in blockers if b.check not in PROFILE_CHECKS]
    if unknown:
        raise ConfigurationError(
            f"seeds/creator_blockers.csv: unknown profile_check {unknown} (known: {PROFILE_CHECKS})"
        )
    oauth = [
        r["blocker_code"] for r in blocker_rows if _flag(r.get("is_oauth_blocker", ""), "creator_blockers")
    ]
    if len(oauth) != 1:
        raise ConfigurationError(
            f"seeds/creator_blockers.csv: exactly one is_oauth_blocker must be true, got {oauth}"
        )

    error_rows = read_seed(
        seeds, "offer_validation_errors", ("error_code", "display_order", "message"), "display_order"
    )
    messages = {r["error_code"]: r["message"] for r in error_rows}
    if set(messages) != set(OFFER_ERROR_CODES):
        raise ConfigurationError(
            f"seeds/offer_validation_errors.csv: error codes {sorted(messages)} differ from {sorted(OFFER_ERROR_CODES)}"
        )

    status_rows = read_seed(seeds, "offer_statuses", ("offer_status", "display_order"), "display_order")
    statuses = tuple(r["offer_status"] for r in status_rows)
    transitions: dict[str, list[str]] = {}
    for r in read_seed(seeds, "offer_status_transitions", ("from_status", "to_status")):
        for col in ("from_status", "to_status"):
            if r[col] not in statuses:
                raise ConfigurationError(f"seeds/offer_status_transitions.csv: unknown {col} {r[col]!r}")
        transitions.setdefault(r["from_status"], []).append(r["to_status"])
    actors = tuple(
        r["changed_by"] for r in read_seed(seeds, "offer_status_actors", ("changed_by",), "display_order")
    )

    collab_rows = read_seed(
        seeds, "collaboration_statuses", ("collaboration_status", "display_order"), "display_order"
    )
    tier_rows = read_seed(seeds, "trust_tiers", ("trust_tier", "tier_order", "search_score"), "tier_order")
    return Rules(
        offer=OfferRules(
            stay_night_value_cents=int(_require(offer, "stay_night_value_cents", ".offer")),
            min_total_value_cents=int(_require(offer, "min_total_value_cents", ".offer")),
            min_cash_without_stay_cents=int(_require(offer, "min_cash_without_stay_cents", ".offer")),
            max_deliverables=int(_require(offer, "max_deliverables", ".offer")),
            expiry_days_default=int(_require(offer, "expiry_days_default", ".offer")),
            expiry_days_min=int(_require(offer, "expiry_days_min", ".offer")),
            expiry_days_max=int(_require(offer, "expiry_days_max", ".offer")),
            messages=messages,
            statuses=statuses,
            transitions={k: tuple(v) for k, v in transitions.items()},
            creator_responses=tuple(
                r["offer_status"]
                for r in status_rows
                if _flag(r.get("is_creator_response", ""), "offer_statuses")
            ),
            changed_by=actors,
        ),
        creator=CreatorRules(
            blockers=blockers,
            oauth_blocker=oauth[0],
            completeness_weights={
                str(k): float(v) for k, v in _require(creator, "completeness_weights", ".creator").items()
            },
            verified_min_completeness=float(_require(creator, "verified_min_completeness", ".creator")),
            trust_tiers={r["trust_tier"]: float(r["search_score"]) for r in tier_rows},
            readiness_states=tuple(
                r["readiness_state"]
                for r in read_seed(
                    seeds, "readiness_states", ("readiness_state", "display_order"), "display_order"
                )
            ),
        ),
        blocker_messages={b.code: b.message for b in blockers},
        trim_characters="".join(chr(cp) for cp in _require(raw, "trim_code_points", "")),
        collaboration_statuses=tuple(r["collaboration_status"] for r in collab_rows),
        collaboration_completed=tuple(
            r["collaboration_status"]
            for r in collab_rows
            if _flag(r.get("is_completed", ""), "collaboration_statuses")
        ),
        funnel_milestones=tuple(
            (r["subject_type"], r["milestone"])
            for r in read_seed(
                seeds, "funnel_milestones", ("subject_type", "milestone", "display_order"), "display_order"
            )
        ),
    )


def load_rules(root: Path | None = None) -> Rules:
    """The rules of the project at `root` (default: CSINFRA_PROJECT_DIR, else this repository), read once per
    project and file version: a catalog or dbt_project.yml edited on disk is read again."""
    root = (root or project_root()).resolve()
    files = [root / "dbt_project.yml", *sorted((root / "seeds").glob("*.csv"))]
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())
    return _load_rules(root, stamp)


@lru_cache(maxsize=8)
def _load_rules(root: Path, stamp: tuple) -> Rules:
    path = root / "dbt_project.yml"
    try:
        project = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the rules from {path}: {exc.strerror} (set CSINFRA_PROJECT_DIR)"
        ) from None
    raw = (project.get("vars") or {}).get("csinfra_rules")
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{path} has no vars.csinfra_rules block")
    seed_paths = project.get("seed-paths") or ["seeds"]
    return parse_rules(raw, root / seed_paths[0])
