"""An independent implementation of docs/rules.md §4 and §5, written from the text of the spec with
its default constants, for tests only. It shares no code or configuration with the project."""

from __future__ import annotations

import math
from datetime import datetime

# String.prototype.trim: WhiteSpace (TAB, VT, FF, SP, NBSP, ZWNBSP, Zs) and LineTerminator (LF, CR, LS, PS)
JS_TRIM = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def blank(s: str | None) -> bool:
    return s is None or s.strip(JS_TRIM) == ""


def empty(xs: list | None) -> bool:
    return xs is None or len(xs) == 0


# docs/rules.md §4: the blockers in display order and the messages a dashboard shows.
BLOCKER_CODES = [
    "missing_display_name",
    "missing_handle",
    "missing_bio",
    "missing_niches",
    "missing_deliverables",
    "missing_minimum_rate",
    "no_social_connected",
]
BLOCKER_MESSAGES = [
    "Add your display name",
    "Set your handle",
    "Write a bio",
    "Select at least one niche",
    "Define your deliverables",
    "Set your minimum rate",
    "Connect Instagram or TikTok",
]


def creator(p: dict, first_collab_completed_at: datetime | None) -> dict:
    oauth = bool(p.get("instagramConnected")) or bool(p.get("tiktokConnected"))
    fee = p.get("minimumFlatFee")
    filled = {
        "display_name": not blank(p.get("displayName")),
        "handle": not blank(p.get("handle")),
        "bio": not blank(p.get("bio")),
        "niches": not empty(p.get("niches")),
        "deliverables": not empty(p.get("deliverables")),
        "minimum_rate": fee is not None and fee > 0,
        "avatar": p.get("avatarUrl") not in (None, ""),
        "oauth": oauth,
    }
    codes = [
        ("missing_display_name", "display_name"),
        ("missing_handle", "handle"),
        ("missing_bio", "bio"),
        ("missing_niches", "niches"),
        ("missing_deliverables", "deliverables"),
        ("missing_minimum_rate", "minimum_rate"),
        ("no_social_connected", "oauth"),
    ]
    blockers = [code for code, check in codes if not filled[check]]
    weights = {
        "display_name": 1,
        "handle": 1,
        "bio": 1,
        "niches": 1,
        "deliverables": 1,
        "minimum_rate": 1,
        "avatar": 0.5,
        "oauth": 1.5,
    }
    completeness = min(1.0, sum(w for k, w in weights.items() if filled[k]) / 8)
    profile_blockers = [b for b in blockers if b != "no_social_connected"]
    if not profile_blockers and oauth:
        readiness = "READY"
    elif not profile_blockers:
        readiness = "PENDING_OAUTH"
    else:
        readiness = "INCOMPLETE"
    if first_collab_completed_at is not None:
        tier = "PROVEN"
    elif oauth and completeness >= 0.8:
        tier = "VERIFIED"
    else:
        tier = "NEW"
    return {
        "trustTier": tier,
        "readinessState": readiness,
        "readinessBlockers": blockers,
        "profileCompleteness": completeness,
    }


def earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


MESSAGES = [
    "Offer value must be at least $100",
    "Cash offers without a stay must be at least $50",
    "Maximum 10 deliverables per offer",
    "At least one deliverable is required",
    "Traffic bonus requires a click threshold",
    "Traffic bonus requires a bonus amount",
]


def js_or(left, right):
    """JavaScript's `left || right`."""
    falsy = (
        left is None
        or left is False
        or left == 0
        or left == ""
        or (isinstance(left, float) and math.isnan(left))
    )
    return right if falsy else left


def offer(o: dict) -> dict:
    cash = o.get("cashCents") or 0
    nights = o.get("stayNights")
    # docs/rules.md §5: "the application computes `stayValueCents || estimate`" (JavaScript's ||: the right side
    # whenever the left is null, undefined, 0 or NaN)
    estimate = nights * 15000 if nights is not None and nights > 0 else 0
    stay_value = js_or(o.get("stayValueCents"), estimate)
    total = cash + stay_value
    n = len(o.get("deliverables") or [])
    bonus = bool(o.get("trafficBonusEnabled"))
    errors = []
    if total < 10000:
        errors.append(MESSAGES[0])
    if (nights is None or nights <= 0) and cash < 5000:
        errors.append(MESSAGES[1])
    if n > 10:
        errors.append(MESSAGES[2])
    if n == 0:
        errors.append(MESSAGES[3])
    if bonus and (o.get("trafficBonusThreshold") is None or o["trafficBonusThreshold"] <= 0):
        errors.append(MESSAGES[4])
    if bonus and (o.get("trafficBonusCents") is None or o["trafficBonusCents"] <= 0):
        errors.append(MESSAGES[5])
    return {"totalValueCents": total, "isValid": not errors, "validationErrors": errors}
