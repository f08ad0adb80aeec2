-- Rollback of 20260203_infrastructure_phase1: removes exactly the objects migration.sql creates.
-- The csinfra runner archives the rows of audit_logs and analytics_events before this file runs
-- (unless the operator passes --discard-data). Dropping columns is metadata-only in PostgreSQL.

DROP TABLE "audit_logs";

DROP TABLE "analytics_events";

DROP FUNCTION "audit_logs_append_only"();

DROP TRIGGER "offers_guard_terms_and_history" ON "offers";

DROP FUNCTION "offers_guard_terms_and_history"();

ALTER TABLE "creator_profiles" DROP CONSTRAINT "creator_profiles_profileCompleteness_range";

ALTER TABLE "offers" DROP COLUMN "originalTermsSnapshot",
DROP COLUMN "statusHistory",
DROP COLUMN "totalValueCents",
DROP COLUMN "isValid",
DROP COLUMN "validationErrors";

ALTER TABLE "creator_profiles" DROP COLUMN "trustTier",
DROP COLUMN "readinessState",
DROP COLUMN "readinessBlockers",
DROP COLUMN "profileCompleteness",
DROP COLUMN "firstOfferReceivedAt",
DROP COLUMN "firstOfferRespondedAt",
DROP COLUMN "firstCollabCompletedAt";

DROP TYPE "TrustTier";

DROP TYPE "ReadinessState";
