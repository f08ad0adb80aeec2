-- The floor: ONE hand-written UPDATE computing every creator's Phase 1 fields (docs/rules.md §4, default
-- constants), as a senior engineer would write it for a one-off backfill. Only rows that differ are
-- written. No audit rows, no batching, one transaction. (Benchmark peer only: the project's rules
-- live in macros/rules; the benchmark checks both give identical rows.)
WITH received AS (
    SELECT "creatorProfileId" AS id, min("createdAt") AS at FROM offers
    WHERE status IS DISTINCT FROM 'draft' GROUP BY 1
), responded AS (
    SELECT id, min(at) AS at FROM (
        SELECT "creatorProfileId" AS id, "respondedAt" AS at FROM offers WHERE "respondedAt" IS NOT NULL
        UNION ALL
        SELECT o."creatorProfileId", (e ->> 'changedAt')::timestamptz AT TIME ZONE 'UTC'
        FROM offers o, jsonb_array_elements(CASE WHEN jsonb_typeof(o."statusHistory") = 'array' THEN o."statusHistory" ELSE '[]' END) e
        WHERE e ->> 'changedBy' = 'creator' AND e ->> 'toStatus' IN ('accepted', 'declined', 'countered')
          AND pg_input_is_valid(e ->> 'changedAt', 'timestamptz')
    ) r GROUP BY 1
), completed AS (
    SELECT "creatorId" AS id, min("completedAt") AS at FROM collaborations
    WHERE status = 'completed' AND "completedAt" IS NOT NULL GROUP BY 1
), f AS (
    SELECT c.id,
           coalesce(btrim(c."displayName", U&'\0009\000A\000B\000C\000D\0020\00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\2028\2029\202F\205F\3000\FEFF'), '') <> '' AS dn,
           coalesce(btrim(c.handle, U&'\0009\000A\000B\000C\000D\0020\00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\2028\2029\202F\205F\3000\FEFF'), '') <> '' AS h,
           coalesce(btrim(c.bio, U&'\0009\000A\000B\000C\000D\0020\00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\2028\2029\202F\205F\3000\FEFF'), '') <> '' AS b,
           coalesce(cardinality(c.niches), 0) > 0 AS n,
           coalesce(cardinality(c.deliverables), 0) > 0 AS d,
           coalesce(c."minimumFlatFee" > 0, false) AS m,
           coalesce(c."avatarUrl" <> '', false) AS a,
           coalesce(c."instagramConnected", false) OR coalesce(c."tiktokConnected", false) AS o,
           least(c."firstOfferReceivedAt", received.at)::timestamp(3) AS fr,
           least(c."firstOfferRespondedAt", responded.at)::timestamp(3) AS fp,
           least(c."firstCollabCompletedAt", completed.at)::timestamp(3) AS fc
    FROM creator_profiles c
    LEFT JOIN received ON received.id = c.id
    LEFT JOIN responded ON responded.id = c.id
    LEFT JOIN completed ON completed.id = c.id
), v AS (
    SELECT f.*,
           least(1.0, (dn::int + h::int + b::int + n::int + d::int + m::int + 0.5 * a::int + 1.5 * o::int) / 8.0)::float8 AS pc,
           to_jsonb(array_remove(ARRAY[
               CASE WHEN NOT dn THEN 'missing_display_name' END, CASE WHEN NOT h THEN 'missing_handle' END,
               CASE WHEN NOT b THEN 'missing_bio' END, CASE WHEN NOT n THEN 'missing_niches' END,
               CASE WHEN NOT d THEN 'missing_deliverables' END, CASE WHEN NOT m THEN 'missing_minimum_rate' END,
               CASE WHEN NOT o THEN 'no_social_connected' END]::text[], NULL)) AS bl,
           CASE WHEN dn AND h AND b AND n AND d AND m AND o THEN 'READY'
                WHEN dn AND h AND b AND n AND d AND m THEN 'PENDING_OAUTH' ELSE 'INCOMPLETE' END AS rs
    FROM f
), x AS (
    SELECT v.*, CASE WHEN fc IS NOT NULL THEN 'PROVEN' WHEN o AND pc >= 0.8 THEN 'VERIFIED' ELSE 'NEW' END AS tt FROM v
)
UPDATE creator_profiles c
SET "trustTier" = x.tt::"TrustTier", "readinessState" = x.rs::"ReadinessState", "readinessBlockers" = x.bl,
    "profileCompleteness" = x.pc, "firstOfferReceivedAt" = x.fr, "firstOfferRespondedAt" = x.fp,
    "firstCollabCompletedAt" = x.fc
FROM x
WHERE c.id = x.id
  AND (c."trustTier"::text, c."readinessState"::text, c."readinessBlockers", c."profileCompleteness",
       c."firstOfferReceivedAt", c."firstOfferRespondedAt", c."firstCollabCompletedAt")
      IS DISTINCT FROM (x.tt, x.rs, x.bl, x.pc, x.fr, x.fp, x.fc);
