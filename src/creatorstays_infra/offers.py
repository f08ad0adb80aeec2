"""Offers online (docs/rules.md §5 and §10): validation, preparation, status changes and expiry.

The constants come from the same place the dbt models read (rules.py); the SQL model
int_offers_validated implements the same rules in set form, and a property-based test
(tests/python/test_offers.py) requires both to agree on random terms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import settings
from .errors import ConflictError, NotFoundError, ValidationError
from .rules import load_rules

INT32 = (-(2**31), 2**31 - 1)

# terms field (snake_case) -> camelCase key used in the snapshot and by the application
TERM_FIELDS = {
    "offer_type": "offerType",
    "cash_cents": "cashCents",
    "stay_nights": "stayNights",
    "stay_value_cents": "stayValueCents",
    "deliverables": "deliverables",
    "requirements": "requirements",
    "traffic_bonus_enabled": "trafficBonusEnabled",
    "traffic_bonus_threshold": "trafficBonusThreshold",
    "traffic_bonus_cents": "trafficBonusCents",
    "expires_in_days": "expiresInDays",
}
_CAMEL_TO_SNAKE = {v: k for k, v in TERM_FIELDS.items()}
_INT_FIELDS = (
    "cash_cents",
    "stay_nights",
    "stay_value_cents",
    "traffic_bonus_threshold",
    "traffic_bonus_cents",
    "expires_in_days",
)


def utc_now() -> datetime:
    """Naive UTC with millisecond precision, like the ORM's TIMESTAMP(3) columns."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as JavaScript's Date.toISOString() writes it."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class OfferTerms:
    """What a host offers. Missing money counts as 0, missing lists as empty."""

    offer_type: str | None = None
    cash_cents: int | None = 0
    stay_nights: int | None = None
    stay_value_cents: int | None = None  # explicit stay value; wins over nights × nightly value unless 0
    deliverables: tuple[str, ...] | None = ()
    requirements: str | None = None
    traffic_bonus_enabled: bool | None = False
    traffic_bonus_threshold: int | None = None
    traffic_bonus_cents: int | None = None
    expires_in_days: int | None = None

    @classmethod
    def parse(cls, terms: OfferTerms | Mapping[str, Any], *, strict: bool = False) -> OfferTerms:
        """Accept OfferTerms or a mapping with snake_case or camelCase keys; reject anything malformed. Keys that
        are not terms (`expiresAt`, `hostProfileId`, …: the application passes its whole form) are ignored, as the
        application ignores them; with `strict` they raise, naming the key."""
        if isinstance(terms, OfferTerms):
            values = {k: getattr(terms, k) for k in TERM_FIELDS}
        elif isinstance(terms, Mapping):
            values = {}
            for key, value in terms.items():
                name = _CAMEL_TO_SNAKE.get(key, key)
                if name not in TERM_FIELDS:
                    if strict:
                        raise ValidationError(
                            str(key), f"unknown offer term (known: {', '.join(TERM_FIELDS.values())})"
                        )
                    continue
                if name in values:
                    raise ValidationError(str(key), "given twice (snake_case and camelCase)")
                values[name] = value
        else:
            raise ValidationError("terms", f"must be a mapping or OfferTerms, not {type(terms).__name__}")
        for name in _INT_FIELDS:
            v = values.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValidationError(
                    name,
                    f"must be an integer number of {'days' if name == 'expires_in_days' else 'cents' if 'cents' in name else 'units'}, not {type(v).__name__}",
                )
            if v is not None and not INT32[0] <= v <= INT32[1]:
                raise ValidationError(name, f"{v} does not fit a 32-bit INTEGER column")
        for name in ("offer_type", "requirements"):
            v = values.get(name)
            if v is not None and not isinstance(v, str):
                raise ValidationError(name, f"must be text, not {type(v).__name__}")
        if values.get("traffic_bonus_enabled") is not None and not isinstance(
            values["traffic_bonus_enabled"], bool
        ):
            raise ValidationError("traffic_bonus_enabled", "must be true or false")
        deliverables = values.get("deliverables")
        if deliverables is not None:
            if isinstance(deliverables, str | bytes) or not isinstance(deliverables, list | tuple):
                raise ValidationError("deliverables", "must be a list of text")
            for i, d in enumerate(deliverables):
                if not isinstance(d, str):
                    raise ValidationError(f"deliverables[{i}]", f"must be text, not {type(d).__name__}")
            values["deliverables"] = tuple(deliverables)
        for name, v in values.items():
            if isinstance(v, str) and "\x00" in v:
                raise ValidationError(
                    name, "must not contain NUL characters (PostgreSQL text cannot hold them)"
                )
        if any(isinstance(d, str) and "\x00" in d for d in values.get("deliverables") or ()):
            raise ValidationError("deliverables", "must not contain NUL characters")
        return cls(**values)


@dataclass(frozen=True)
class OfferValidation:
    is_valid: bool
    errors: list[str]
    total_value_cents: int
    stay_value_cents: int


def validate_offer_terms(terms: OfferTerms | Mapping[str, Any], *, strict: bool = False) -> OfferValidation:
    """docs/rules.md §5: total value and the validation errors, in order, with their exact messages. `strict`
    rejects keys that are not terms (by default they are ignored, as the application ignores them)."""
    t = OfferTerms.parse(terms, strict=strict)
    r = load_rules().offer
    nights = t.stay_nights
    has_stay = nights is not None and nights > 0
    estimate = nights * r.stay_night_value_cents if has_stay else 0
    # the application's `stayValueCents || estimate`: an explicit value wins unless it is NULL or 0
    stay_value = t.stay_value_cents if t.stay_value_cents else estimate
    cash = t.cash_cents or 0
    total = cash + stay_value
    n_deliverables = len(t.deliverables or ())
    bonus = bool(t.traffic_bonus_enabled)
    checks = [
        ("min_total_value", total < r.min_total_value_cents),
        ("min_cash_without_stay", not has_stay and cash < r.min_cash_without_stay_cents),
        ("max_deliverables", n_deliverables > r.max_deliverables),
        ("no_deliverables", n_deliverables == 0),
        (
            "traffic_bonus_threshold",
            bonus and (t.traffic_bonus_threshold is None or t.traffic_bonus_threshold <= 0),
        ),
        ("traffic_bonus_amount", bonus and (t.traffic_bonus_cents is None or t.traffic_bonus_cents <= 0)),
    ]
    errors = [r.messages[code] for code, failed in checks if failed]
    return OfferValidation(
        is_valid=not errors, errors=errors, total_value_cents=total, stay_value_cents=stay_value
    )


@dataclass(frozen=True)
class PreparedOffer:
    """The Phase 1 fields of a new offer. `data` uses docs/rules.md §10's names; `columns` the table's."""

    data: dict[str, Any]
    validation: OfferValidation

    @property
    def is_valid(self) -> bool:
        return self.validation.is_valid

    @property
    def columns(self) -> dict[str, Any]:
        d = self.data
        return {
            "originalTermsSnapshot": Jsonb(d["original_terms_snapshot"]),
            "totalValueCents": d["total_value_cents"],
            "isValid": d["is_valid"],
            "validationErrors": Jsonb(d["validation_errors"]),
            "statusHistory": Jsonb(d["status_history"]),
            "expiresAt": d["expires_at"],
        }


def clamp_expiry_days(days: int | None) -> int:
    r = load_rules().offer
    days = r.expiry_days_default if days is None else days
    return max(r.expiry_days_min, min(r.expiry_days_max, days))


def prepare_offer_for_creation(
    terms: OfferTerms | Mapping[str, Any], now: datetime | None = None, *, strict: bool = False
) -> PreparedOffer:
    """Everything Phase 1 stores with a new offer: the frozen terms snapshot, total value, validity,
    errors, an empty status history and the expiry (default 14 days, clamped to 3–30). `.columns` is what
    the application's ORM create takes (its column names); `.data` the same values under docs/rules.md §10's
    snake_case names. `strict` rejects keys that are not terms (ignored by default, as by the application)."""
    t = OfferTerms.parse(terms, strict=strict)
    v = validate_offer_terms(t)
    if not INT32[0] <= v.total_value_cents <= INT32[1]:
        raise ValidationError(
            "total_value_cents", f"{v.total_value_cents} does not fit the INTEGER column totalValueCents"
        )
    now = now or utc_now()
    snapshot = {
        "offerType": t.offer_type,
        "cashCents": t.cash_cents or 0,
        "stayNights": t.stay_nights,
        "stayValueCents": v.stay_value_cents,
        "deliverables": list(t.deliverables or ()),
        "requirements": t.requirements,
        "trafficBonusEnabled": bool(t.traffic_bonus_enabled),
        "trafficBonusThreshold": t.traffic_bonus_threshold,
        "trafficBonusCents": t.traffic_bonus_cents,
        "totalValueCents": v.total_value_cents,
        "snapshotAt": iso_utc(now),
    }
    data = {
        "original_terms_snapshot": snapshot,
        "total_value_cents": v.total_value_cents,
        "is_valid": v.is_valid,
        "validation_errors": list(v.errors),
        "status_history": [],
        "expires_at": now + timedelta(days=clamp_expiry_days(t.expires_in_days)),
    }
    return PreparedOffer(data=data, validation=v)


# -- status changes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusChange:
    offer_id: str
    from_status: str
    to_status: str
    changed_by: str
    changed_at: str
    reason: str | None = None
    history_length: int = field(default=0)

    def entry(self) -> dict:
        e = {
            "fromStatus": self.from_status,
            "toStatus": self.to_status,
            "changedBy": self.changed_by,
            "changedAt": self.changed_at,
        }
        if self.reason is not None:
            e["reason"] = self.reason
        return e


class InvalidTransition(ValidationError):
    """The status machine of docs/rules.md §5 does not allow this change."""


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "must be a non-empty string")
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL characters")
    return value


def check_transition(from_status: str, to_status: str) -> None:
    r = load_rules().offer
    for name, s in (("from_status", from_status), ("to_status", to_status)):
        if s not in r.statuses:
            raise ValidationError(name, f"unknown offer status {s!r} (known: {', '.join(r.statuses)})")
    allowed = r.transitions.get(from_status, ())
    if to_status not in allowed:
        raise InvalidTransition(
            "to_status",
            f"an offer cannot go from {from_status!r} to {to_status!r} "
            f"({'allowed: ' + ', '.join(allowed) if allowed else from_status + ' is terminal'})",
        )


def record_offer_status_change(
    conn: psycopg.Connection,
    offer_id: str,
    from_status: str,
    to_status: str,
    changed_by: str,
    reason: str | None = None,
    *,
    at: datetime | None = None,
    app_schema: str | None = None,
) -> StatusChange:
    """Set the offer's status and append the change to statusHistory in ONE statement, only if the offer
    is still in `from_status` (compare-and-set): concurrent writers cannot both win, and a stale caller
    gets ConflictError. The caller owns the transaction."""
    _check_text("offer_id", offer_id)
    for name, v in (("from_status", from_status), ("to_status", to_status), ("changed_by", changed_by)):
        if not isinstance(v, str):
            raise ValidationError(name, f"must be a string, not {type(v).__name__}")
    r = load_rules().offer
    if changed_by not in r.changed_by:
        raise ValidationError(
            "changed_by", f"unknown actor {changed_by!r} (known: {', '.join(r.changed_by)})"
        )
    if reason is not None:
        _check_text("reason", reason)
    check_transition(from_status, to_status)
    change = StatusChange(offer_id, from_status, to_status, changed_by, iso_utc(at or utc_now()), reason)
    table = sql.Identifier(app_schema or settings.app_schema(), "offers")
    row = conn.execute(
        sql.SQL(
            """update {} set status = %(to)s,
                   "statusHistory" = "statusHistory" || jsonb_build_array(%(entry)s::jsonb),
                   "updatedAt" = (now() at time zone 'UTC')::timestamp(3)
               where id = %(id)s and status = %(from)s
               returning jsonb_array_length("statusHistory")"""
        ).format(table),
        {"to": to_status, "entry": json.dumps(change.entry()), "id": offer_id, "from": from_status},
    ).fetchone()
    if row is None:
        current = conn.execute(
            sql.SQL("select status from {} where id = %s").format(table), (offer_id,)
        ).fetchone()
        if current is None:
            raise NotFoundError(f"offer_id {offer_id!r}: no such offer")
        raise ConflictError(
            f"offer {offer_id!r} is {current[0]!r}, not {from_status!r}: someone changed it first; nothing written"
        )
    return StatusChange(**{**change.__dict__, "history_length": row[0]})


def expire_offers(
    conn: psycopg.Connection, now: datetime | None = None, *, app_schema: str | None = None
) -> int:
    """Expire every pending or countered offer past its expiresAt in one set-based statement: status,
    a status-history entry (changedBy system) and one `offer.expired` audit row per offer. Returns the count.
    Offers another transaction changes first (say, accepted) are left alone. The caller owns the transaction."""
    schema = sql.Identifier(app_schema or settings.app_schema())
    moment = now or utc_now()
    r = load_rules().offer
    expirable = [s for s, targets in r.transitions.items() if "expired" in targets and s != "draft"]
    row = conn.execute(
        sql.SQL(
            """
            with expired as (
                update {schema}.offers
                set status = 'expired',
                    "statusHistory" = "statusHistory" || jsonb_build_array(jsonb_build_object(
                        'fromStatus', status, 'toStatus', 'expired', 'changedBy', 'system',
                        'changedAt', %(changed_at)s::text, 'reason', 'expiresAt passed')),
                    "updatedAt" = %(now)s::timestamp(3)
                where status = any(%(expirable)s) and "expiresAt" < %(now)s::timestamp(3)
                returning id, "statusHistory" -> -1 ->> 'fromStatus' as from_status, "expiresAt"
            ),
            audited as (
                insert into {schema}.audit_logs (id, action, "actorType", "actorId", "targetType", "targetId", metadata, "createdAt")
                select 'c' || lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0')
                           || substr(md5(random()::text || expired.id), 1, 12),
                       'offer.expired', 'system', 'system', 'Offer', expired.id,
                       jsonb_build_object('fromStatus', expired.from_status, 'toStatus', 'expired',
                                          'expiresAt', to_char(expired."expiresAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
                       %(now)s::timestamp(3)
                from expired
                returning 1
            )
            select (select count(*) from expired), (select count(*) from audited)
            """
        ).format(schema=schema),
        {"changed_at": iso_utc(moment), "now": moment, "expirable": expirable},
    ).fetchone()
    return int(row[0])
