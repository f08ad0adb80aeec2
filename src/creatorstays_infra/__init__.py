"""Phase 1 trust, readiness and audit infrastructure for the creator marketplace."""

__version__ = "0.1.0"
