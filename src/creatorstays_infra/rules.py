"""The rules' constants, read from the one place the dbt models read them: `vars.csinfra_rules` in
dbt_project.yml (CSINFRA_PROJECT_DIR locates the project when the package is installed elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigurationError
from .settings import project_root


@dataclass(frozen=True)
class OfferRules:
    stay_night_value_cents: int
    min_total_value_cents: int
    min_cash_without_stay_cents: int
    max_deliverables: int
    expiry_days_default: int
    expiry_days_min: int
    expiry_days_max: int
    messages: dict[str, str]  # error code -> message, in the specified order
    statuses: tuple[str, ...]
    transitions: dict[str, tuple[str, ...]]
    creator_responses: tuple[str, ...]
    changed_by: tuple[str, ...]


@dataclass(frozen=True)
class Blocker:
    code: str
    check: str  # the profile check that must hold (display_name, handle, bio, niches, deliverables, minimum_rate, oauth)
    message: str


@dataclass(frozen=True)
class CreatorRules:
    blockers: tuple[Blocker, ...]  # in display order
    oauth_blocker: str
    completeness_weights: dict[str, float]
    verified_min_completeness: float


@dataclass(frozen=True)
class Rules:
    offer: OfferRules
    creator: CreatorRules
    blocker_messages: dict[str, str]  # blocker code -> display message, in order
    trim_characters: str


def _require(mapping: dict, key: str, where: str) -> Any:
    if key not in mapping:
        raise ConfigurationError(f"dbt_project.yml vars.csinfra_rules.{where} has no {key!r}")
    return mapping[key]


def parse_rules(raw: dict) -> Rules:
    offer = _require(raw, "offer", "")
    creator = _require(raw, "creator", "")
    errors = _require(offer, "errors", "offer")
    return Rules(
        offer=OfferRules(
            stay_night_value_cents=int(_require(offer, "stay_night_value_cents", "offer")),
            min_total_value_cents=int(_require(offer, "min_total_value_cents", "offer")),
            min_cash_without_stay_cents=int(_require(offer, "min_cash_without_stay_cents", "offer")),
            max_deliverables=int(_require(offer, "max_deliverables", "offer")),
            expiry_days_default=int(_require(offer, "expiry_days_default", "offer")),
            expiry_days_min=int(_require(offer, "expiry_days_min", "offer")),
            expiry_days_max=int(_require(offer, "expiry_days_max", "offer")),
            messages={e["code"]: e["message"] for e in errors},
            statuses=tuple(_require(offer, "statuses", "offer")),
            transitions={k: tuple(v) for k, v in _require(offer, "transitions", "offer").items()},
            creator_responses=tuple(_require(offer, "creator_responses", "offer")),
            changed_by=tuple(_require(offer, "changed_by", "offer")),
        ),
        creator=CreatorRules(
            blockers=tuple(
                Blocker(code=str(b["code"]), check=str(b["check"]), message=str(b["message"]))
                for b in _require(creator, "blockers", "creator")
            ),
            oauth_blocker=str(_require(creator, "oauth_blocker", "creator")),
            completeness_weights={
                str(k): float(v) for k, v in _require(creator, "completeness_weights", "creator").items()
            },
            verified_min_completeness=float(_require(creator, "verified_min_completeness", "creator")),
        ),
        blocker_messages={b["code"]: b["message"] for b in _require(creator, "blockers", "creator")},
        trim_characters="".join(chr(cp) for cp in _require(raw, "trim_code_points", "")),
    )


@lru_cache(maxsize=4)
def load_rules(path: Path | None = None) -> Rules:
    path = path or project_root() / "dbt_project.yml"
    try:
        project = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the rules from {path}: {exc.strerror} (set CSINFRA_PROJECT_DIR)"
        ) from None
    raw = (project.get("vars") or {}).get("csinfra_rules")
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{path} has no vars.csinfra_rules block")
    return parse_rules(raw)
