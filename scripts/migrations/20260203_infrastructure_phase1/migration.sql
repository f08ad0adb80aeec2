-- Phase 1: trust, readiness and audit infrastructure.
-- Shipped byte for byte as prisma/migrations/20260203_infrastructure_phase1/migration.sql.
-- Statements are unqualified, as in every Prisma migration: they act on the schema first in
-- search_path (the application schema; the csinfra runner sets it, Prisma sets it from the URL).
-- Every statement is metadata-only on the existing tables (no rewrite, no scan): new columns
-- have constant defaults, new indexes are on new (empty) tables, and the completeness CHECK is
-- added NOT VALID (see its comment). squawk lints this file in `make test`.

-- CreateEnum
CREATE TYPE "TrustTier" AS ENUM ('NEW', 'VERIFIED', 'PROVEN');

-- CreateEnum
CREATE TYPE "ReadinessState" AS ENUM ('INCOMPLETE', 'PENDING_OAUTH', 'READY');

-- AlterTable
ALTER TABLE "creator_profiles" ADD COLUMN "trustTier" "TrustTier" NOT NULL DEFAULT 'NEW',
ADD COLUMN "readinessState" "ReadinessState" NOT NULL DEFAULT 'INCOMPLETE',
ADD COLUMN "readinessBlockers" JSONB NOT NULL DEFAULT '[]',
ADD COLUMN "profileCompleteness" DOUBLE PRECISION NOT NULL DEFAULT 0,
ADD COLUMN "firstOfferReceivedAt" TIMESTAMP(3),
ADD COLUMN "firstOfferRespondedAt" TIMESTAMP(3),
ADD COLUMN "firstCollabCompletedAt" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "offers" ADD COLUMN "originalTermsSnapshot" JSONB,
ADD COLUMN "statusHistory" JSONB NOT NULL DEFAULT '[]',
ADD COLUMN "totalValueCents" INTEGER,
ADD COLUMN "isValid" BOOLEAN NOT NULL DEFAULT true,
ADD COLUMN "validationErrors" JSONB NOT NULL DEFAULT '[]';

-- CreateTable
CREATE TABLE "audit_logs" (
    "id" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "actorType" TEXT NOT NULL,
    "actorId" TEXT,
    "actorEmail" TEXT,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "ipAddress" TEXT,
    "userAgent" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "analytics_events" (
    "id" TEXT NOT NULL,
    "actorType" TEXT NOT NULL,
    "actorId" TEXT,
    "eventType" TEXT NOT NULL,
    "eventData" JSONB NOT NULL DEFAULT '{}',
    "sessionId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "analytics_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "audit_logs_targetType_targetId_idx" ON "audit_logs"("targetType", "targetId");

-- CreateIndex
CREATE INDEX "audit_logs_actorId_idx" ON "audit_logs"("actorId");

-- CreateIndex
CREATE INDEX "audit_logs_action_idx" ON "audit_logs"("action");

-- CreateIndex
CREATE INDEX "audit_logs_createdAt_idx" ON "audit_logs"("createdAt");

-- CreateIndex
CREATE INDEX "analytics_events_actorType_actorId_createdAt_idx" ON "analytics_events"("actorType", "actorId", "createdAt");

-- CreateIndex
CREATE INDEX "analytics_events_eventType_createdAt_idx" ON "analytics_events"("eventType", "createdAt");

-- CreateIndex
CREATE INDEX "analytics_events_createdAt_idx" ON "analytics_events"("createdAt");

-- Integrity the database enforces, against any client (custom SQL).

-- profileCompleteness stays in [0, 1]. NOT VALID skips the scan of existing rows, which all hold
-- the column default 0 at this moment; PostgreSQL still checks every INSERT and UPDATE from now on.
ALTER TABLE "creator_profiles" ADD CONSTRAINT "creator_profiles_profileCompleteness_range"
CHECK ("profileCompleteness" >= 0 AND "profileCompleteness" <= 1) NOT VALID;

-- audit_logs is append-only: no UPDATE, DELETE or TRUNCATE.
CREATE FUNCTION "audit_logs_append_only"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "audit_logs_no_update_delete"
BEFORE UPDATE OR DELETE ON "audit_logs"
FOR EACH ROW EXECUTE FUNCTION "audit_logs_append_only"();

CREATE TRIGGER "audit_logs_no_truncate"
BEFORE TRUNCATE ON "audit_logs"
FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_append_only"();

-- offers: originalTermsSnapshot is write-once; statusHistory only grows (entries never change).
CREATE FUNCTION "offers_guard_terms_and_history"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD."originalTermsSnapshot" IS NOT NULL
       AND NEW."originalTermsSnapshot" IS DISTINCT FROM OLD."originalTermsSnapshot" THEN
        RAISE EXCEPTION 'offers."originalTermsSnapshot" is write-once (offer %)', OLD."id"
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW."statusHistory" IS DISTINCT FROM OLD."statusHistory" THEN
        IF jsonb_typeof(NEW."statusHistory") <> 'array'
           OR jsonb_array_length(NEW."statusHistory") < jsonb_array_length(OLD."statusHistory")
           OR EXISTS (
               SELECT FROM jsonb_array_elements(OLD."statusHistory") WITH ORDINALITY AS old_entry (entry, position)
               WHERE NEW."statusHistory" -> (old_entry.position::int - 1) IS DISTINCT FROM old_entry.entry
           ) THEN
            RAISE EXCEPTION 'offers."statusHistory" is append-only (offer %)', OLD."id"
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER "offers_guard_terms_and_history"
BEFORE UPDATE OF "originalTermsSnapshot", "statusHistory" ON "offers"
FOR EACH ROW
WHEN (OLD."originalTermsSnapshot" IS DISTINCT FROM NEW."originalTermsSnapshot"
      OR OLD."statusHistory" IS DISTINCT FROM NEW."statusHistory")
EXECUTE FUNCTION "offers_guard_terms_and_history"();
