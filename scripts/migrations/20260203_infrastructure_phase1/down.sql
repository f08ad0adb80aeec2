-- Rollback of 20260203_infrastructure_phase1: removes exactly what migration.sql and extras.sql
-- create, nothing else. The csinfra runner archives every value that cannot be derived again first
-- (the rows of audit_logs and analytics_events, offers' statusHistory and the terms snapshots that
-- are not marked reconstructed), unless the operator passes --discard-data. Dropping columns is
-- metadata-only in PostgreSQL. The extras are dropped IF EXISTS: a Phase 1 that the ORM applied
-- and csinfra never adopted has none.

-- extras.sql
DROP TRIGGER IF EXISTS "offers_guard_terms_and_history" ON "offers";

DROP FUNCTION IF EXISTS "offers_guard_terms_and_history"();

ALTER TABLE "creator_profiles" DROP CONSTRAINT IF EXISTS "creator_profiles_profileCompleteness_range";

-- migration.sql (audit_logs' triggers go with the table)
DROP TABLE "audit_logs";

DROP TABLE "analytics_events";

DROP FUNCTION IF EXISTS "audit_logs_append_only"();

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
