-- Helper functions of the demo scripts (session-local, in pg_temp). Every value is a hash of
-- (seed, row number, column slot), so the same seed gives the same data at any size.

CREATE OR REPLACE FUNCTION pg_temp.rnd(seed bigint, i bigint, k integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8extended(i, seed * 7919 + k) & 9007199254740991)::float8 / 9007199254740992.0 $$;

CREATE OR REPLACE FUNCTION pg_temp.cuid(seed bigint, kind text, i bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'c' || kind || substr(md5(seed::text || ':' || kind || ':' || i::text), 1, 23) $$;

-- Blank strings (JavaScript's trim() strips every one of these).
CREATE OR REPLACE FUNCTION pg_temp.blank(j bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (ARRAY[
    '', ' ', '   ', E'\t', E'\n\t ', U&'\00A0', U&'\3000\2003', U&'\FEFF', U&'\2028 \2029', E'\r\n\u000B\u000C'
])[1 + (j % 10)::int] $$;

-- Creator signup time (also used by offers, so they need no join).
CREATE OR REPLACE FUNCTION pg_temp.signup(seed bigint, base timestamp, i bigint) RETURNS timestamp(3)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (base - pg_temp.rnd(seed, i, 1) * interval '600 days')::timestamp(3) $$;
