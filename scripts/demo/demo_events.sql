-- The audit and analytics rows the application would have written since Phase 1 went live,
-- consistent with the demo offers and collaborations (docs/rules.md §8). Set-based, deterministic.
-- Expects demo_params(seed, n, hosts, base) plus demo_event_params(live_at timestamp(3),
-- profile_views bigint), and search_path set to the application schema. The profile_viewed
-- events are in demo_profile_views.sql.
--
-- Real event streams are imperfect, so this one is too:
--   * about 2% of analytics events are missing (an analytics write must never break the caller,
--     so some are lost);
--   * about 1% are duplicated (a client retry: same payload, new id, a few seconds later);
--   * about 5% of responses are logged late (a retry queue delivers them 1-48 hours after the fact);
--   * some completed collaborations have no "completedAt" in the operational table; their
--     collab_completed event is the only thing that knows when they finished.
-- The audit rows of user actors carry an e-mail address and an IP address, as the application's
-- do; marts must never expose them. System and cron writers use "actorId" 'system' (never NULL).

CREATE FUNCTION pg_temp.h(t text, k integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashtextextended(t, k) & 9007199254740991)::float8 / 9007199254740992.0 $$;

CREATE FUNCTION pg_temp.eid(kind text, t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'c' || kind || substr(md5(kind || ':' || t), 1, 22) $$;

CREATE FUNCTION pg_temp.ip(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '203.0.' || (hashtext(t) & 255) || '.' || ((hashtext(t) >> 8) & 255) $$;

-- One row per offer the events can know about, with the facts every event below reads.
CREATE TEMPORARY TABLE demo_offer_facts ON COMMIT DROP AS
SELECT o."id" AS offer_id,
       o."hostProfileId" AS host_id,
       o."creatorProfileId" AS creator_id,
       o."status" AS status,
       o."createdAt" AS created_at,
       o."cashCents" + CASE WHEN o."stayNights" > 0 THEN o."stayNights" * 15000 ELSE 0 END AS total_value_cents,
       -- the creator's response, wherever the operational data records it
       coalesce(o."respondedAt", (
           SELECT min((e ->> 'changedAt')::timestamptz AT TIME ZONE 'UTC')::timestamp(3)
           FROM jsonb_array_elements(o."statusHistory") AS e
           WHERE e ->> 'changedBy' = 'creator'
       )) AS responded_at,
       (
           SELECT min((e ->> 'changedAt')::timestamptz AT TIME ZONE 'UTC')::timestamp(3)
           FROM jsonb_array_elements(o."statusHistory") AS e
           WHERE e ->> 'changedBy' <> 'creator'
       ) AS closed_at
FROM "offers" AS o, demo_event_params AS ep
WHERE o."createdAt" >= ep.live_at;

-- offer.created: every offer created since go-live, drafts included (host actor).
INSERT INTO "audit_logs" ("id", "action", "actorType", "actorId", "actorEmail", "targetType", "targetId",
                          "metadata", "ipAddress", "userAgent", "createdAt")
SELECT pg_temp.eid('ac', f.offer_id), 'offer.created', 'user', f.host_id,
       'host.' || substr(md5(f.host_id), 1, 8) || '@example.com', 'Offer', f.offer_id,
       jsonb_build_object('status', CASE WHEN f.status = 'draft' THEN 'draft' ELSE 'pending' END,
                          'totalValueCents', f.total_value_cents, 'creatorProfileId', f.creator_id),
       pg_temp.ip(f.host_id), 'Mozilla/5.0 (demo)', f.created_at
FROM demo_offer_facts AS f;

-- offer_sent (host), one per sent offer: 2% lost, 1% sent twice.
INSERT INTO "analytics_events" ("id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
SELECT pg_temp.eid('es', f.offer_id || ':' || d.copy), 'host', f.host_id, 'offer_sent',
       jsonb_build_object('offerId', f.offer_id, 'creatorProfileId', f.creator_id,
                          'totalValueCents', f.total_value_cents),
       's' || substr(md5(f.host_id || f.created_at::date), 1, 15),
       f.created_at + (d.copy * 4 + 1) * interval '1 second'
FROM demo_offer_facts AS f
CROSS JOIN LATERAL (SELECT pg_temp.h(f.offer_id, 1) AS r) AS x
CROSS JOIN LATERAL generate_series(0, CASE WHEN x.r < 0.01 THEN 1 ELSE 0 END) AS d(copy)
WHERE f.status <> 'draft' AND x.r >= 0.02 OR f.status <> 'draft' AND x.r < 0.01;

-- offer.viewed (the creator opened the offer): every responded offer was viewed first; 70% of the
-- rest were. 3% of views were not audited (an old client).
INSERT INTO "audit_logs" ("id", "action", "actorType", "actorId", "actorEmail", "targetType", "targetId",
                          "metadata", "ipAddress", "userAgent", "createdAt")
SELECT pg_temp.eid('av', f.offer_id), 'offer.viewed', 'user', f.creator_id,
       'creator.' || substr(md5(f.creator_id), 1, 8) || '@example.com', 'Offer', f.offer_id,
       jsonb_build_object('source', 'inbox'),
       pg_temp.ip(f.creator_id), 'Instagram in-app browser (demo)',
       CASE WHEN f.responded_at IS NOT NULL
            THEN f.created_at + (f.responded_at - f.created_at) * (0.1 + 0.8 * pg_temp.h(f.offer_id, 2))
            ELSE f.created_at + pg_temp.h(f.offer_id, 2) * interval '48 hours' END::timestamp(3)
FROM demo_offer_facts AS f
WHERE f.status <> 'draft'
  AND pg_temp.h(f.offer_id, 3) >= 0.03
  AND (f.responded_at IS NOT NULL OR pg_temp.h(f.offer_id, 4) < 0.70);

-- offer.status_changed for creator responses and host withdrawals; offer.expired by the cron.
INSERT INTO "audit_logs" ("id", "action", "actorType", "actorId", "actorEmail", "targetType", "targetId",
                          "metadata", "ipAddress", "userAgent", "createdAt")
SELECT pg_temp.eid('at', f.offer_id),
       CASE WHEN f.status = 'expired' THEN 'offer.expired' ELSE 'offer.status_changed' END,
       CASE WHEN f.status = 'expired' THEN 'cron' ELSE 'user' END,
       CASE f.status WHEN 'expired' THEN 'system' WHEN 'withdrawn' THEN f.host_id ELSE f.creator_id END,
       CASE f.status WHEN 'expired' THEN NULL
                     WHEN 'withdrawn' THEN 'host.' || substr(md5(f.host_id), 1, 8) || '@example.com'
                     ELSE 'creator.' || substr(md5(f.creator_id), 1, 8) || '@example.com' END,
       'Offer', f.offer_id,
       jsonb_build_object('fromStatus', 'pending', 'toStatus', f.status),
       CASE WHEN f.status <> 'expired' THEN pg_temp.ip(f.creator_id) END,
       CASE WHEN f.status <> 'expired' THEN 'Mozilla/5.0 (demo)' END,
       coalesce(CASE WHEN f.status IN ('accepted', 'declined', 'countered') THEN f.responded_at ELSE f.closed_at END,
                f.created_at + interval '36 hours')
FROM demo_offer_facts AS f
WHERE f.status IN ('accepted', 'declined', 'countered', 'withdrawn', 'expired')
  AND (f.status NOT IN ('accepted', 'declined', 'countered') OR f.responded_at IS NOT NULL);

-- offer_responded (creator): 2% lost, 1% twice, 5% delivered 1-48 hours late.
INSERT INTO "analytics_events" ("id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
SELECT pg_temp.eid('er', f.offer_id || ':' || d.copy), 'creator', f.creator_id, 'offer_responded',
       jsonb_build_object('offerId', f.offer_id, 'response', f.status, 'hostProfileId', f.host_id),
       's' || substr(md5(f.creator_id || f.responded_at::date), 1, 15),
       (f.responded_at
        + CASE WHEN pg_temp.h(f.offer_id, 6) < 0.05 THEN (1 + 47 * pg_temp.h(f.offer_id, 7)) * interval '1 hour'
               ELSE interval '0' END
        + d.copy * interval '3 seconds')::timestamp(3)
FROM demo_offer_facts AS f
CROSS JOIN LATERAL (SELECT pg_temp.h(f.offer_id, 5) AS r) AS x
CROSS JOIN LATERAL generate_series(0, CASE WHEN x.r < 0.01 THEN 1 ELSE 0 END) AS d(copy)
WHERE f.status IN ('accepted', 'declined', 'countered')
  AND f.responded_at IS NOT NULL
  AND (x.r >= 0.02 OR x.r < 0.01);

-- Collaborations started since go-live: the facts the collaboration events read.
CREATE TEMPORARY TABLE demo_collab_facts ON COMMIT DROP AS
SELECT c."id" AS collab_id,
       c."creatorId" AS creator_id,
       c."hostId" AS host_id,
       c."status" AS status,
       c."createdAt" AS created_at,
       -- the completion time: the operational column, or (where it is missing) the time the
       -- application's completion event recorded
       CASE WHEN c."status" = 'completed'
            THEN coalesce(c."completedAt", (c."createdAt" + interval '12 days'
                                            + pg_temp.h(c."id", 8) * interval '20 days')::timestamp(3)) END
           AS completed_at,
       o."cashCents" + CASE WHEN o."stayNights" > 0 THEN o."stayNights" * 15000 ELSE 0 END AS total_value_cents
FROM "collaborations" AS c
JOIN "offers" AS o ON o."id" = c."offerId", demo_event_params AS ep
WHERE c."createdAt" >= ep.live_at;

-- collab_started: one event for the creator, one for the host; 2% of the pairs lost.
INSERT INTO "analytics_events" ("id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
SELECT pg_temp.eid('ec', c.collab_id || ':' || r.role), r.role, r.actor_id, 'collab_started',
       jsonb_build_object('collabId', c.collab_id, r.other_key, r.other_id,
                          'totalValueCents', c.total_value_cents, 'role', r.role),
       NULL, c.created_at
FROM demo_collab_facts AS c
CROSS JOIN LATERAL (VALUES ('creator', c.creator_id, 'hostProfileId', c.host_id),
                           ('host', c.host_id, 'creatorProfileId', c.creator_id)) AS r(role, actor_id, other_key, other_id)
WHERE pg_temp.h(c.collab_id, 9) >= 0.02;

-- collab_completed (system): 2% lost.
INSERT INTO "analytics_events" ("id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
SELECT pg_temp.eid('ed', c.collab_id), 'system', 'system', 'collab_completed',
       jsonb_build_object('collabId', c.collab_id, 'creatorProfileId', c.creator_id, 'hostProfileId', c.host_id,
                          'totalValueCents', c.total_value_cents),
       NULL, c.completed_at
FROM demo_collab_facts AS c
WHERE c.completed_at IS NOT NULL AND c.completed_at <= (SELECT base FROM demo_params)
  AND pg_temp.h(c.collab_id, 10) >= 0.02;

-- collab.started / collab.completed / collab.cancelled in the audit log.
INSERT INTO "audit_logs" ("id", "action", "actorType", "actorId", "actorEmail", "targetType", "targetId",
                          "metadata", "ipAddress", "userAgent", "createdAt")
SELECT pg_temp.eid('a' || substr(a.action, 8, 2), c.collab_id), a.action, a.actor_type, a.actor_id,
       CASE WHEN a.actor_type = 'user' THEN 'host.' || substr(md5(c.host_id), 1, 8) || '@example.com' END,
       'Collaboration', c.collab_id,
       jsonb_build_object('status', c.status, 'totalValueCents', c.total_value_cents),
       CASE WHEN a.actor_type = 'user' THEN pg_temp.ip(c.host_id) END,
       NULL,
       a.at
FROM demo_collab_facts AS c
CROSS JOIN LATERAL (VALUES
    ('collab.started', 'user', c.host_id, c.created_at),
    ('collab.completed', 'system', 'system', c.completed_at),
    ('collab.cancelled', 'user', c.host_id, (c.created_at + interval '5 days')::timestamp(3))
) AS a(action, actor_type, actor_id, at)
WHERE a.action = 'collab.started'
   OR a.action = 'collab.completed' AND c.completed_at IS NOT NULL AND c.completed_at <= (SELECT base FROM demo_params)
   OR a.action = 'collab.cancelled' AND c.status = 'cancelled';
