-- profile_viewed analytics events (docs/rules.md §8), the bulk of a real event stream.
-- Expects demo_params and demo_event_params(live_at, profile_views); search_path = the app schema.

-- profile_viewed (host): hosts browsing creators. Popularity is skewed (a few creators get most
-- views); sources are search, offer and direct. Ids come from the tables, so this works on any data.
CREATE TEMPORARY TABLE demo_creator_ids ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY "id") - 1 AS k, "id" FROM "creator_profiles";
CREATE TEMPORARY TABLE demo_host_ids ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY "id") - 1 AS k, "id" FROM "host_profiles";
CREATE UNIQUE INDEX ON demo_creator_ids (k);
CREATE UNIQUE INDEX ON demo_host_ids (k);
ANALYZE demo_creator_ids;
ANALYZE demo_host_ids;

INSERT INTO "analytics_events" ("id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
SELECT pg_temp.eid('ev', p.seed || ':' || v.i), 'host', h."id", 'profile_viewed',
       jsonb_build_object('creatorProfileId', c."id",
                          'source', (ARRAY['search', 'search', 'offer', 'direct'])[1 + (v.i % 4)::int]),
       's' || substr(md5(p.seed || ':' || v.i / 5), 1, 15),
       (ep.live_at + pg_temp.rnd(p.seed, v.i, 61) * (p.base - ep.live_at))::timestamp(3)
FROM demo_params AS p
CROSS JOIN demo_event_params AS ep
CROSS JOIN LATERAL (SELECT count(*) AS n FROM demo_creator_ids) AS nc
CROSS JOIN LATERAL (SELECT count(*) AS n FROM demo_host_ids) AS nh
CROSS JOIN LATERAL generate_series(1, ep.profile_views) AS v(i)
JOIN demo_creator_ids AS c ON c.k = (power(pg_temp.rnd(p.seed, v.i, 60), 3) * nc.n)::bigint % nc.n
JOIN demo_host_ids AS h ON h.k = v.i % nh.n;
