-- CreateEnum
CREATE TYPE "TrustTier" AS ENUM ('NEW', 'VERIFIED', 'PROVEN');

-- CreateEnum
CREATE TYPE "ReadinessState" AS ENUM ('INCOMPLETE', 'PENDING_OAUTH', 'READY');

-- AlterTable
ALTER TABLE "creator_profiles" ADD COLUMN     "firstCollabCompletedAt" TIMESTAMP(3),
ADD COLUMN     "firstOfferReceivedAt" TIMESTAMP(3),
ADD COLUMN     "firstOfferRespondedAt" TIMESTAMP(3),
ADD COLUMN     "profileCompleteness" DOUBLE PRECISION NOT NULL DEFAULT 0,
ADD COLUMN     "readinessBlockers" JSONB NOT NULL DEFAULT '[]',
ADD COLUMN     "readinessState" "ReadinessState" NOT NULL DEFAULT 'INCOMPLETE',
ADD COLUMN     "trustTier" "TrustTier" NOT NULL DEFAULT 'NEW';

-- AlterTable
ALTER TABLE "offers" ADD COLUMN     "isValid" BOOLEAN NOT NULL DEFAULT true,
ADD COLUMN     "originalTermsSnapshot" JSONB,
ADD COLUMN     "statusHistory" JSONB NOT NULL DEFAULT '[]',
ADD COLUMN     "totalValueCents" INTEGER,
ADD COLUMN     "validationErrors" JSONB NOT NULL DEFAULT '[]';

-- CreateTable
CREATE TABLE "audit_logs" (
    "id" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "actorType" TEXT NOT NULL,
    "actorId" TEXT NOT NULL,
    "actorEmail" TEXT,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT NOT NULL,
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
    "actorId" TEXT NOT NULL,
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
