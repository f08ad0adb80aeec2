"""Phase 1 trust, readiness and audit infrastructure for the creator marketplace.

The online library (docs/rules.md §10); every function takes a psycopg connection first and the
caller owns the transaction unless its docstring says otherwise.
"""

from .analytics import (
    AnalyticsBatchWriter,
    analytics_stats,
    log_analytics_event,
    log_collab_completed,
    log_collab_started,
    log_offer_responded,
    log_offer_sent,
    log_profile_viewed,
    reset_analytics_stats,
)
from .audit import (
    AuditEntry,
    get_actor_activity,
    get_audit_trail,
    get_recent_by_action,
    log_admin_action,
    log_audit_event,
    log_collab_event,
    log_offer_event,
    log_system_event,
)
from .creators import (
    CreatorState,
    mark_first_collab_completed,
    mark_first_offer_received,
    mark_first_offer_responded,
    update_creator_readiness,
    update_creator_trust,
)
from .errors import ConflictError, CsinfraError, NotFoundError, ValidationError
from .offers import (
    InvalidTransition,
    OfferTerms,
    OfferValidation,
    PreparedOffer,
    StatusChange,
    expire_offers,
    prepare_offer_for_creation,
    record_offer_status_change,
    validate_offer_terms,
)
from .readiness import (
    Readiness,
    blocker_messages,
    compute_readiness,
    is_expired,
    is_ready,
    is_valid_transition,
)
from .timeouts import timeouts

__version__ = "0.1.0"

__all__ = [
    "AnalyticsBatchWriter",
    "AuditEntry",
    "ConflictError",
    "CreatorState",
    "CsinfraError",
    "InvalidTransition",
    "NotFoundError",
    "OfferTerms",
    "OfferValidation",
    "PreparedOffer",
    "Readiness",
    "StatusChange",
    "ValidationError",
    "analytics_stats",
    "blocker_messages",
    "compute_readiness",
    "expire_offers",
    "get_actor_activity",
    "get_audit_trail",
    "get_recent_by_action",
    "is_expired",
    "is_ready",
    "is_valid_transition",
    "log_admin_action",
    "log_analytics_event",
    "log_audit_event",
    "log_collab_completed",
    "log_collab_event",
    "log_collab_started",
    "log_offer_event",
    "log_offer_responded",
    "log_offer_sent",
    "log_profile_viewed",
    "log_system_event",
    "mark_first_collab_completed",
    "mark_first_offer_received",
    "mark_first_offer_responded",
    "prepare_offer_for_creation",
    "record_offer_status_change",
    "reset_analytics_stats",
    "timeouts",
    "update_creator_readiness",
    "update_creator_trust",
    "validate_offer_terms",
]
