"""Pure helpers, no database: what the application's own helpers compute in memory (a creator's blockers,
completeness, readiness and trust tier from a profile; blocker messages; is-ready; offer transitions and expiry).

The database path is still the one that writes (`update_creator_readiness` runs the SQL the batch runs); these
are for rendering and for checks before a save. They read the same rule constants as the SQL models
(dbt_project.yml vars.csinfra_rules), and a property-based test (tests/python/test_creators_online.py) requires
`compute_readiness` to agree with the SQL model on every random profile it writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ValidationError
from .rules import load_rules

# The profile's fields, as the application's ORM names them (snake_case accepted too).
PROFILE_FIELDS = {
    "display_name": "displayName",
    "handle": "handle",
    "bio": "bio",
    "niches": "niches",
    "deliverables": "deliverables",
    "minimum_flat_fee": "minimumFlatFee",
    "avatar_url": "avatarUrl",
    "instagram_connected": "instagramConnected",
    "tiktok_connected": "tiktokConnected",
    "first_collab_completed_at": "firstCollabCompletedAt",
}


@dataclass(frozen=True)
class Readiness:
    readiness_state: str  # READY | PENDING_OAUTH | INCOMPLETE
    readiness_blockers: list[str]  # codes, in the configured order
    profile_completeness: float  # in [0, 1]
    trust_tier: str  # PROVEN | VERIFIED | NEW

    @property
    def is_ready(self) -> bool:
        return self.readiness_state == "READY"


def _field(profile: Mapping[str, Any], name: str) -> Any:
    camel = PROFILE_FIELDS[name]
    if camel in profile:
        return profile[camel]
    return profile.get(name)


def _text(profile: Mapping[str, Any], name: str) -> Any:
    value = _field(profile, name)
    if value is not None and not isinstance(value, str):
        raise ValidationError(PROFILE_FIELDS[name], f"must be text or None, not {type(value).__name__}")
    return value


def _list(profile: Mapping[str, Any], name: str) -> Any:
    value = _field(profile, name)
    if value is not None and (isinstance(value, str) or not isinstance(value, Sequence)):
        raise ValidationError(PROFILE_FIELDS[name], f"must be a list or None, not {type(value).__name__}")
    return value


def _filled_checks(profile: Mapping[str, Any]) -> dict[str, bool]:
    """check name -> filled (docs/rules.md §4: blank = NULL or only what JavaScript's trim() strips)."""
    trim = load_rules().trim_characters

    def present(name: str) -> bool:
        value = _text(profile, name)
        return value is not None and value.strip(trim) != ""

    def non_empty(name: str) -> bool:
        value = _list(profile, name)
        return value is not None and len(value) > 0

    fee = _field(profile, "minimum_flat_fee")
    if fee is not None and (isinstance(fee, bool) or not isinstance(fee, int)):
        raise ValidationError(
            "minimumFlatFee", f"must be an integer number of cents or None, not {type(fee).__name__}"
        )
    avatar = _text(profile, "avatar_url")
    return {
        "display_name": present("display_name"),
        "handle": present("handle"),
        "bio": present("bio"),
        "niches": non_empty("niches"),
        "deliverables": non_empty("deliverables"),
        "minimum_rate": fee is not None and fee > 0,
        "avatar": avatar is not None and avatar != "",
        "oauth": bool(_field(profile, "instagram_connected")) or bool(_field(profile, "tiktok_connected")),
    }


def compute_readiness(profile: Mapping[str, Any]) -> Readiness:
    """Blockers, completeness, readiness and trust tier of one profile (a mapping of the ORM's fields)."""
    if not isinstance(profile, Mapping):
        raise ValidationError(
            "profile", f"must be a mapping of the profile's fields, not {type(profile).__name__}"
        )
    creator = load_rules().creator
    filled = _filled_checks(profile)
    blockers = [b.code for b in creator.blockers if not filled[b.check]]
    total = sum(creator.completeness_weights.values())
    completeness = (
        0.0
        if total <= 0
        else min(1.0, sum(w for check, w in creator.completeness_weights.items() if filled[check]) / total)
    )
    profile_done = all(filled[b.check] for b in creator.blockers if b.code != creator.oauth_blocker)
    state = "READY" if profile_done and filled["oauth"] else "PENDING_OAUTH" if profile_done else "INCOMPLETE"
    if _field(profile, "first_collab_completed_at") is not None:
        tier = "PROVEN"
    elif filled["oauth"] and completeness >= creator.verified_min_completeness:
        tier = "VERIFIED"
    else:
        tier = "NEW"
    return Readiness(
        readiness_state=state, readiness_blockers=blockers, profile_completeness=completeness, trust_tier=tier
    )


def blocker_messages(codes: Sequence[str]) -> list[str]:
    """The dashboard's messages for blocker codes, in the given order; an unknown code raises ValidationError."""
    messages = load_rules().blocker_messages
    unknown = [c for c in codes if c not in messages]
    if unknown:
        raise ValidationError("codes", f"unknown blocker code(s) {unknown} (known: {', '.join(messages)})")
    return [messages[c] for c in codes]


def is_ready(profile: Mapping[str, Any]) -> bool:
    return compute_readiness(profile).is_ready


def is_valid_transition(from_status: str, to_status: str) -> bool:
    """Whether an offer may go from one status to the other (docs/rules.md §5); terminal statuses go nowhere."""
    return to_status in load_rules().offer.transitions.get(from_status, ())


def is_expired(offer: Mapping[str, Any], now: datetime | None = None) -> bool:
    """A pending or countered offer whose expiresAt has passed (what `expire_offers` would expire now)."""
    expires_at = offer.get("expiresAt", offer.get("expires_at"))
    status = offer.get("status")
    if expires_at is None or not is_valid_transition(str(status), "expired"):
        return False
    if not isinstance(expires_at, datetime):
        raise ValidationError("expiresAt", f"must be a datetime, not {type(expires_at).__name__}")
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if expires_at.tzinfo is not None:
        expires_at = expires_at.astimezone(UTC).replace(tzinfo=None)
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    return expires_at < now
