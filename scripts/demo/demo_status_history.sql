-- Where the Phase 1 columns exist, offers created after Phase 1 shipped carry the status history
-- the application would have written. Some creator responses are known only from this history
-- (their "respondedAt" is NULL), as happens with real data.
UPDATE "offers" AS o
SET "statusHistory" = jsonb_build_array(jsonb_build_object(
        'fromStatus', 'pending',
        'toStatus', o."status",
        'changedBy', CASE WHEN o."status" IN ('accepted', 'declined', 'countered') THEN 'creator'
                          WHEN o."status" = 'withdrawn' THEN 'host'
                          ELSE 'system' END,
        'changedAt', to_char(coalesce(o."respondedAt", o."createdAt" + interval '36 hours'),
                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    ))
WHERE o."createdAt" >= TIMESTAMP '2026-02-03'
  AND o."status" IN ('accepted', 'declined', 'countered', 'withdrawn', 'expired')
  AND o."statusHistory" = '[]'::jsonb;
