-- Keys, unique indexes, indexes and foreign keys of the application's tables (Prisma naming).

ALTER TABLE "users" ADD CONSTRAINT "users_pkey" PRIMARY KEY ("id");
ALTER TABLE "creator_profiles" ADD CONSTRAINT "creator_profiles_pkey" PRIMARY KEY ("id");
ALTER TABLE "host_profiles" ADD CONSTRAINT "host_profiles_pkey" PRIMARY KEY ("id");
ALTER TABLE "properties" ADD CONSTRAINT "properties_pkey" PRIMARY KEY ("id");
ALTER TABLE "offers" ADD CONSTRAINT "offers_pkey" PRIMARY KEY ("id");
ALTER TABLE "collaborations" ADD CONSTRAINT "collaborations_pkey" PRIMARY KEY ("id");

CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE UNIQUE INDEX "creator_profiles_userId_key" ON "creator_profiles"("userId");
CREATE UNIQUE INDEX "creator_profiles_handle_key" ON "creator_profiles"("handle");
CREATE UNIQUE INDEX "host_profiles_userId_key" ON "host_profiles"("userId");
CREATE UNIQUE INDEX "collaborations_offerId_key" ON "collaborations"("offerId");

CREATE INDEX "offers_creatorProfileId_idx" ON "offers"("creatorProfileId");
CREATE INDEX "offers_hostProfileId_idx" ON "offers"("hostProfileId");
CREATE INDEX "offers_status_idx" ON "offers"("status");
CREATE INDEX "collaborations_creatorId_idx" ON "collaborations"("creatorId");
CREATE INDEX "collaborations_hostId_idx" ON "collaborations"("hostId");

ALTER TABLE "creator_profiles" ADD CONSTRAINT "creator_profiles_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "host_profiles" ADD CONSTRAINT "host_profiles_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "properties" ADD CONSTRAINT "properties_hostProfileId_fkey" FOREIGN KEY ("hostProfileId") REFERENCES "host_profiles"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "offers" ADD CONSTRAINT "offers_hostProfileId_fkey" FOREIGN KEY ("hostProfileId") REFERENCES "host_profiles"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "offers" ADD CONSTRAINT "offers_creatorProfileId_fkey" FOREIGN KEY ("creatorProfileId") REFERENCES "creator_profiles"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "offers" ADD CONSTRAINT "offers_propertyId_fkey" FOREIGN KEY ("propertyId") REFERENCES "properties"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "collaborations" ADD CONSTRAINT "collaborations_offerId_fkey" FOREIGN KEY ("offerId") REFERENCES "offers"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "collaborations" ADD CONSTRAINT "collaborations_creatorId_fkey" FOREIGN KEY ("creatorId") REFERENCES "creator_profiles"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "collaborations" ADD CONSTRAINT "collaborations_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "host_profiles"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "collaborations" ADD CONSTRAINT "collaborations_propertyId_fkey" FOREIGN KEY ("propertyId") REFERENCES "properties"("id") ON DELETE SET NULL ON UPDATE CASCADE;
