"""Phase 1 trust, readiness and audit infrastructure for the creator marketplace.

The online library (SPEC section 10); every function takes a psycopg connection first and the
caller owns the transaction unless its docstring says otherwise.
"""

from .creators import (
    CreatorState,
    mark_first_collab_completed,
    mark_first_offer_received,
    mark_first_offer_responded,
    update_creator_readiness,
    update_creator_trust,
)
from .errors import ConflictError, CsinfraError, NotFoundError, ValidationError

__version__ = "0.1.0"

__all__ = [
    "ConflictError",
    "CreatorState",
    "CsinfraError",
    "NotFoundError",
    "ValidationError",
    "mark_first_collab_completed",
    "mark_first_offer_received",
    "mark_first_offer_responded",
    "update_creator_readiness",
    "update_creator_trust",
]
