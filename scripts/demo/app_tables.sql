-- The application's tables before Phase 1, as its ORM (Prisma) lays them out:
-- snake_case plural tables, quoted camelCase columns, TEXT (cuid) ids, TIMESTAMP(3) UTC.
-- Includes columns the pipeline never reads, as the real application has them.
-- Keys, indexes and foreign keys are in app_constraints.sql (added after a bulk load).

CREATE TABLE "users" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "emailVerified" TIMESTAMP(3),
    "name" TEXT,
    "image" TEXT,
    "role" TEXT NOT NULL DEFAULT 'creator',
    "passwordHash" TEXT,
    "lastLoginIp" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL
);

CREATE TABLE "creator_profiles" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "handle" TEXT NOT NULL,
    "displayName" TEXT NOT NULL,
    "bio" TEXT,
    "avatarUrl" TEXT,
    "location" TEXT,
    "niches" TEXT[],
    "deliverables" TEXT[],
    "minimumFlatFee" INTEGER,
    "followerCount" INTEGER,
    "engagementRate" DOUBLE PRECISION,
    "instagramConnected" BOOLEAN NOT NULL DEFAULT false,
    "instagramHandle" TEXT,
    "instagramAccessToken" TEXT,
    "instagramTokenExpiresAt" TIMESTAMP(3),
    "tiktokConnected" BOOLEAN NOT NULL DEFAULT false,
    "tiktokHandle" TEXT,
    "tiktokAccessToken" TEXT,
    "tiktokRefreshToken" TEXT,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "isPublic" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL
);

CREATE TABLE "host_profiles" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "displayName" TEXT NOT NULL,
    "companyName" TEXT,
    "website" TEXT,
    "stripeCustomerId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL
);

CREATE TABLE "properties" (
    "id" TEXT NOT NULL,
    "hostProfileId" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "propertyType" TEXT,
    "city" TEXT,
    "country" TEXT,
    "nightlyRateCents" INTEGER,
    "photos" TEXT[],
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL
);

CREATE TABLE "offers" (
    "id" TEXT NOT NULL,
    "hostProfileId" TEXT NOT NULL,
    "creatorProfileId" TEXT NOT NULL,
    "propertyId" TEXT,
    "offerType" TEXT NOT NULL DEFAULT 'cash',
    "cashCents" INTEGER NOT NULL DEFAULT 0,
    "stayNights" INTEGER,
    "trafficBonusEnabled" BOOLEAN NOT NULL DEFAULT false,
    "trafficBonusThreshold" INTEGER,
    "trafficBonusCents" INTEGER,
    "requirements" TEXT,
    "deliverables" TEXT[],
    "message" TEXT,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "counterCashCents" INTEGER,
    "counterMessage" TEXT,
    "negotiationRound" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "expiresAt" TIMESTAMP(3),
    "respondedAt" TIMESTAMP(3),
    "hostViewedAt" TIMESTAMP(3)
);

CREATE TABLE "collaborations" (
    "id" TEXT NOT NULL,
    "offerId" TEXT NOT NULL,
    "creatorId" TEXT NOT NULL,
    "hostId" TEXT NOT NULL,
    "propertyId" TEXT,
    "status" TEXT NOT NULL DEFAULT 'pending-agreement',
    "contentUrls" TEXT[],
    "agreementSignedAt" TIMESTAMP(3),
    "paymentIntentId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "completedAt" TIMESTAMP(3)
);
