"""The pure helpers (no database), against docs/rules.md §4 and §5 as written; the property test in
test_creators_online.py checks compute_readiness against the SQL on random profiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from creatorstays_infra import (
    ValidationError,
    blocker_messages,
    compute_readiness,
    is_expired,
    is_ready,
    is_valid_transition,
)

COMPLETE = {
    "displayName": "Ana",
    "handle": "ana",
    "bio": "Travel",
    "niches": ["travel"],
    "deliverables": ["reel"],
    "minimumFlatFee": 50_000,
    "avatarUrl": "https://a",
    "instagramConnected": False,
    "tiktokConnected": True,
}


def test_a_complete_profile_with_oauth_is_ready_and_verified():
    r = compute_readiness(COMPLETE)
    assert (r.readiness_state, r.readiness_blockers, r.profile_completeness, r.trust_tier) == (
        "READY",
        [],
        1.0,
        "VERIFIED",
    )
    assert r.is_ready and is_ready(COMPLETE)


@pytest.mark.parametrize(
    ("missing", "completeness", "tier"),
    [
        # docs/rules.md §4: OAuth and completeness >= 0.8 is VERIFIED; the weights (8 in all) put 0.8125 and 0.75 on
        # either side of it
        ({"bio": None}, 7 / 8, "VERIFIED"),
        ({"bio": None, "avatarUrl": None}, 6.5 / 8, "VERIFIED"),
        ({"bio": None, "handle": " "}, 6 / 8, "NEW"),
        ({"bio": None, "handle": " ", "avatarUrl": None}, 5.5 / 8, "NEW"),
    ],
)
def test_verified_needs_completeness_of_at_least_0_8(missing, completeness, tier):
    r = compute_readiness({**COMPLETE, **missing})
    assert (r.profile_completeness, r.trust_tier) == (completeness, tier)


def test_without_oauth_pending_and_blockers_in_the_specified_order():
    r = compute_readiness({**COMPLETE, "tiktokConnected": False})
    assert (r.readiness_state, r.readiness_blockers) == ("PENDING_OAUTH", ["no_social_connected"])
    assert (
        r.profile_completeness == pytest.approx(6.5 / 8) and r.trust_tier == "NEW"
    )  # no OAuth: never VERIFIED
    blank = compute_readiness(
        {
            "displayName": " \t",
            "handle": "\u3000",
            "bio": None,
            "niches": [],
            "deliverables": None,
            "minimumFlatFee": 0,
            "avatarUrl": "",
        }
    )
    assert blank.readiness_blockers == [
        "missing_display_name",
        "missing_handle",
        "missing_bio",
        "missing_niches",
        "missing_deliverables",
        "missing_minimum_rate",
        "no_social_connected",
    ]
    assert (blank.readiness_state, blank.profile_completeness, blank.trust_tier) == ("INCOMPLETE", 0.0, "NEW")
    assert blocker_messages(["missing_bio", "no_social_connected"]) == [
        "Write a bio",
        "Connect Instagram or TikTok",
    ]


def test_proven_with_a_completed_collaboration_and_snake_case_accepted():
    r = compute_readiness({"display_name": "A", "first_collab_completed_at": datetime(2026, 1, 1)})
    assert r.trust_tier == "PROVEN" and r.readiness_state == "INCOMPLETE"


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"bio": 5}, "bio"),
        ({"niches": "travel"}, "niches"),
        ({"minimumFlatFee": 1.5}, "minimumFlatFee"),
        ({"minimumFlatFee": True}, "minimumFlatFee"),
    ],
)
def test_bad_fields_are_named(profile, field):
    with pytest.raises(ValidationError) as bad:
        compute_readiness(profile)
    assert bad.value.field == field
    with pytest.raises(ValidationError, match="codes"):
        blocker_messages(["missing_everything"])


def test_transitions_and_expiry_follow_the_spec():
    allowed = {("draft", "pending"), ("draft", "withdrawn")} | {
        (f, t)
        for f in ("pending", "countered")
        for t in ("accepted", "declined", "countered", "withdrawn", "expired")
    }
    statuses = ["draft", "pending", "countered", "accepted", "declined", "withdrawn", "expired"]
    assert {(f, t) for f in statuses for t in statuses if is_valid_transition(f, t)} == allowed
    now = datetime(2026, 6, 1, 12, 0, 0)
    past, future = now - timedelta(seconds=1), now + timedelta(days=1)
    assert is_expired({"status": "pending", "expiresAt": past}, now)
    assert is_expired({"status": "countered", "expires_at": past.replace(tzinfo=UTC)}, now)
    assert not is_expired({"status": "pending", "expiresAt": future}, now)
    assert not is_expired({"status": "accepted", "expiresAt": past}, now)
    assert not is_expired({"status": "draft", "expiresAt": past}, now)
    assert not is_expired({"status": "pending", "expiresAt": None}, now)
