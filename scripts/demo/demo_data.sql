-- Deterministic demo data, set-based: every value is a hash of (seed, row number, column slot),
-- so the same --seed gives the same database at any size, and nothing is inserted row by row.
-- Expects a temporary table demo_params(seed bigint, n bigint, hosts bigint, base timestamp(3))
-- and runs with search_path set to the application schema.
-- Nasty cases on purpose (docs/rules.md §2): NULL vs empty arrays, blank text made of tabs,
-- newlines, no-break and other Unicode spaces, a zero-width space (not blank!), zero and
-- negative money, accepted offers answered only in statusHistory, completed collaborations
-- without a completion time, drafts.

-- The helper functions (pg_temp.rnd, cuid, blank, signup) are in demo_functions.sql.

-- Only the columns the pipeline reads, the story needs, or the schema requires (NOT NULL without a
-- default) are filled; every other column keeps its default or NULL, as on a young account.

INSERT INTO "users" ("id", "email", "name", "createdAt", "updatedAt", "lastLoginAt")
SELECT pg_temp.cuid(p.seed, 'u', i),
       'creator' || i || '@example.com',
       'Creator ' || i,
       pg_temp.signup(p.seed, p.base, i),
       pg_temp.signup(p.seed, p.base, i),
       CASE WHEN i % 3 <> 0 THEN p.base - (i % 90) * interval '1 day' END
FROM demo_params AS p, generate_series(1, p.n) AS i;

INSERT INTO "users" ("id", "email", "name", "createdAt", "updatedAt")
SELECT pg_temp.cuid(p.seed, 'v', j),
       'host' || j || '@example.com',
       'Host ' || j,
       p.base - interval '700 days',
       p.base - interval '700 days'
FROM demo_params AS p, generate_series(1, p.hosts) AS j;

-- Hosts are vacation rentals, spas, gyms…; some give a contact e-mail (which never leaves staging).
INSERT INTO "host_profiles" ("id", "userId", "vertical", "displayName", "contactEmail", "createdAt", "updatedAt")
SELECT pg_temp.cuid(p.seed, 'h', j),
       pg_temp.cuid(p.seed, 'v', j),
       (ARRAY['STR', 'SPA', 'FITNESS', 'STR', 'HOTEL', 'EXPERIENCE'])[1 + (j % 6)::int]::"Vertical",
       (ARRAY['Seaside Villas', 'Alpine Spa', 'City Gym', 'Desert Retreat', 'Harbour Hotel', 'Surf School'])[1 + (j % 6)::int]
           || ' ' || j,
       CASE WHEN j % 2 = 0 THEN 'bookings' || j || '@example.com' END,
       p.base - interval '700 days',
       p.base - interval '700 days'
FROM demo_params AS p, generate_series(1, p.hosts) AS j;

-- Every host has one property; every other host a second one.
INSERT INTO "properties" ("id", "hostProfileId", "vertical", "title", "isDraft", "trackingToken", "createdAt", "updatedAt")
SELECT pg_temp.cuid(p.seed, 'p', k),
       pg_temp.cuid(p.seed, 'h', 1 + (k - 1) % p.hosts),
       (ARRAY['STR', 'SPA', 'FITNESS', 'STR', 'HOTEL', 'EXPERIENCE'])[1 + ((1 + (k - 1) % p.hosts) % 6)::int]::"Vertical",
       'Property ' || k,
       false,
       substr(md5(p.seed::text || ':t:' || k::text), 1, 16),
       p.base - interval '700 days',
       p.base - interval '700 days'
FROM demo_params AS p, generate_series(1, p.hosts + p.hosts / 2) AS k;

INSERT INTO "creator_profiles" (
    "id", "userId", "handle", "displayName", "bio", "avatarUrl", "location", "niches", "deliverables",
    "minimumFlatFee", "instagramConnected", "instagramAccessToken", "instagramFollowers",
    "tiktokConnected", "tiktokAccessToken", "tiktokRefreshToken", "isPublic", "createdAt", "updatedAt"
)
SELECT pg_temp.cuid(p.seed, 'r', i),
       pg_temp.cuid(p.seed, 'u', i),
       -- handle is unique: blank handles are distinct runs of one whitespace character
       CASE WHEN i % 500 = 7
            THEN repeat(substr(pg_temp.blank(i / 500) || ' ', 1, 1), (i / 5000 + 1)::int) || repeat(E'\t', (i / 500 % 10)::int)
            ELSE 'creator_' || i END,
       CASE WHEN r.dn < 0.02 THEN ''
            WHEN r.dn < 0.05 THEN pg_temp.blank(i)
            WHEN r.dn < 0.055 THEN U&'\200B'           -- zero-width space: not whitespace to trim()
            ELSE 'Creator ' || i END,
       CASE WHEN r.bio < 0.10 THEN NULL
            WHEN r.bio < 0.14 THEN ''
            WHEN r.bio < 0.19 THEN pg_temp.blank(i + 3)
            ELSE 'Travel and wellness stories, ' || (i % 97) || ' trips a year.' END,
       CASE WHEN r.avatar < 0.20 THEN NULL
            WHEN r.avatar < 0.25 THEN ''
            ELSE 'https://cdn.example.com/avatars/' || i || '.jpg' END,
       (ARRAY['Lisbon', 'Austin', 'Bali', NULL])[1 + (i % 4)::int],
       CASE WHEN r.niches < 0.08 THEN NULL
            WHEN r.niches < 0.15 THEN '{}'::text[]
            ELSE (ARRAY['travel', 'wellness', 'fitness', 'food', 'luxury'])[1:1 + (i % 3)::int] END,
       CASE WHEN r.deliv < 0.07 THEN NULL
            WHEN r.deliv < 0.13 THEN '{}'::text[]
            ELSE (ARRAY['instagram_reel', 'instagram_story', 'tiktok_video', 'ugc_photos'])[1:1 + (i % 4)::int] END,
       CASE WHEN r.fee < 0.10 THEN NULL
            WHEN r.fee < 0.13 THEN 0
            WHEN r.fee < 0.15 THEN -500
            ELSE 5000 + (r.fee * 100000)::int END,
       r.ig < 0.55,
       CASE WHEN r.ig < 0.55 THEN 'IGQV' || md5('ig' || i) END,
       CASE WHEN r.ig < 0.55 THEN (r.fee * 200000)::int END,
       r.tt < 0.30,
       CASE WHEN r.tt < 0.30 THEN 'act.' || md5('tt' || i) END,
       CASE WHEN r.tt < 0.30 THEN 'rft.' || md5('rt' || i) END,
       -- most creators publish their profile (the column's default is false)
       i % 10 <> 3,
       pg_temp.signup(p.seed, p.base, i),
       pg_temp.signup(p.seed, p.base, i)
FROM demo_params AS p,
     generate_series(1, p.n) AS i,
     LATERAL (SELECT pg_temp.rnd(p.seed, i, 10) AS dn,
                     pg_temp.rnd(p.seed, i, 11) AS bio,
                     pg_temp.rnd(p.seed, i, 12) AS avatar,
                     pg_temp.rnd(p.seed, i, 13) AS niches,
                     pg_temp.rnd(p.seed, i, 14) AS deliv,
                     pg_temp.rnd(p.seed, i, 15) AS fee,
                     pg_temp.rnd(p.seed, i, 16) AS ig,
                     pg_temp.rnd(p.seed, i, 17) AS tt) AS r;

-- About three offers per creator (some creators get none, some several).
INSERT INTO "offers" (
    "id", "hostProfileId", "creatorProfileId", "propertyId", "offerType", "cashCents", "stayNights",
    "trafficBonusEnabled", "trafficBonusThreshold", "trafficBonusCents", "requirements", "deliverables",
    "status", "negotiationRound", "lastCounterBy", "createdAt", "updatedAt", "expiresAt", "respondedAt", "hostViewedAt"
)
SELECT pg_temp.cuid(p.seed, 'o', o.i),
       pg_temp.cuid(p.seed, 'h', o.host),
       pg_temp.cuid(p.seed, 'r', o.creator),
       -- property k belongs to host k; an offer may leave it open, but not one that became a collaboration
       CASE WHEN o.r_prop < 0.9 OR o.status = 'accepted' THEN pg_temp.cuid(p.seed, 'p', o.host) END,
       CASE WHEN o.nights > 0 AND o.cash > 0 THEN 'hybrid' WHEN o.nights > 0 THEN 'stay' ELSE 'cash' END,
       o.cash,
       o.nights,
       o.r_bonus < 0.10,
       CASE WHEN o.r_bonus < 0.10 THEN (ARRAY[NULL, 0, 500, 1000, 2500])[1 + (o.i % 5)::int] END,
       CASE WHEN o.r_bonus < 0.10 THEN (ARRAY[5000, NULL, 0, 2500, -100, 10000])[1 + (o.i % 6)::int] END,
       CASE WHEN o.i % 10 = 0 THEN NULL
            WHEN o.i % 10 = 1 THEN pg_temp.blank(o.i)
            ELSE 'Tag @property; post within 14 days of the stay.' END,
       CASE WHEN o.r_deliv < 0.03 THEN NULL
            WHEN o.r_deliv < 0.06 THEN '{}'::text[]
            WHEN o.r_deliv < 0.07 THEN array_fill('instagram_story'::text, ARRAY[11 + (o.i % 2)::int])
            ELSE (ARRAY['instagram_reel', 'instagram_story', 'tiktok_video'])[1:1 + (o.i % 3)::int] END,
       o.status,
       CASE WHEN o.status = 'countered' THEN 2 ELSE 1 END,
       CASE WHEN o.status = 'countered' THEN 'creator' END,
       o.created_at,
       o.created_at,
       o.created_at + interval '14 days',
       CASE WHEN o.status IN ('accepted', 'declined', 'countered') AND o.r_resp >= 0.10
            THEN (o.created_at + o.r_resp * interval '72 hours')::timestamp(3) END,
       CASE WHEN o.r_view < 0.6 THEN (o.created_at + o.r_view * interval '24 hours')::timestamp(3) END
FROM demo_params AS p,
     LATERAL (
         SELECT s.i,
                1 + (pg_temp.rnd(p.seed, s.i, 30) * p.hosts)::bigint % p.hosts AS host,
                c.creator,
                pg_temp.rnd(p.seed, s.i, 32) AS r_prop,
                pg_temp.rnd(p.seed, s.i, 36) AS r_bonus,
                pg_temp.rnd(p.seed, s.i, 37) AS r_deliv,
                pg_temp.rnd(p.seed, s.i, 38) AS r_resp,
                pg_temp.rnd(p.seed, s.i, 39) AS r_view,
                CASE WHEN m.r < 0.15 THEN 0
                     WHEN m.r < 0.17 THEN -(1 + (m.r * 10000)::int)
                     WHEN m.r < 0.25 THEN 1000 + (m.r * 15000)::int
                     ELSE 5000 + (m.r * 250000)::int END AS cash,
                CASE WHEN n.r < 0.35 THEN NULL
                     WHEN n.r < 0.40 THEN 0
                     WHEN n.r < 0.41 THEN -1
                     ELSE 1 + (n.r * 7)::int END AS nights,
                CASE WHEN st.r < 0.08 THEN 'draft'
                     WHEN st.r < 0.33 THEN 'pending'
                     WHEN st.r < 0.40 THEN 'countered'
                     WHEN st.r < 0.70 THEN 'accepted'
                     WHEN st.r < 0.85 THEN 'declined'
                     WHEN st.r < 0.90 THEN 'withdrawn'
                     ELSE 'expired' END AS status,
                (pg_temp.signup(p.seed, p.base, c.creator)
                   + pg_temp.rnd(p.seed, s.i, 35) * (p.base - pg_temp.signup(p.seed, p.base, c.creator)))::timestamp(3)
                   AS created_at
         FROM generate_series(1, 3 * p.n) AS s(i),
              LATERAL (SELECT 1 + (pg_temp.rnd(p.seed, s.i, 31) * p.n)::bigint % p.n AS creator) AS c,
              LATERAL (SELECT pg_temp.rnd(p.seed, s.i, 33) AS r) AS m,
              LATERAL (SELECT pg_temp.rnd(p.seed, s.i, 34) AS r) AS n,
              LATERAL (SELECT pg_temp.rnd(p.seed, s.i, 40) AS r) AS st
     ) AS o;

-- A collaboration for every accepted offer; some completed ones lack "completedAt". A collaboration
-- always has a property ("propertyId" NOT NULL): accepted offers always name one.
INSERT INTO "collaborations" (
    "id", "offerId", "creatorId", "hostId", "propertyId", "status", "createdAt", "updatedAt", "completedAt"
)
SELECT 'cl' || substr(o."id", 3),
       o."id",
       o."creatorProfileId",
       o."hostProfileId",
       o."propertyId",
       c.status,
       coalesce(o."respondedAt", o."createdAt"),
       coalesce(o."respondedAt", o."createdAt"),
       CASE WHEN c.status = 'completed' AND c.r >= 0.10
            THEN (coalesce(o."respondedAt", o."createdAt") + interval '10 days' + c.r * interval '30 days')::timestamp(3) END
FROM "offers" AS o,
     LATERAL (SELECT ((hashtext(o."id") & 2147483647) % 1000) / 1000.0 AS r) AS h,
     LATERAL (SELECT h.r,
                     CASE WHEN h.r < 0.50 THEN 'completed'
                          WHEN h.r < 0.62 THEN 'active'
                          WHEN h.r < 0.70 THEN 'pending-agreement'
                          WHEN h.r < 0.76 THEN 'content-uploaded'
                          WHEN h.r < 0.82 THEN 'approved'
                          WHEN h.r < 0.90 THEN 'content-live'
                          ELSE 'cancelled' END AS status) AS c
WHERE o."status" = 'accepted';
