-- Phase 1, csinfra's extras: the integrity the database enforces against any client, which the
-- application's ORM does not model (so they are not in migration.sql, the file the application
-- repository ships for Prisma). `csinfra migrate up` applies this file in the same transaction as
-- migration.sql, or alone when the ORM has applied migration.sql already (adoption).
-- Statements are unqualified: they act on the application schema (the runner sets search_path).
-- Every statement is metadata-only on the existing tables (no rewrite, no scan). squawk lints
-- this file in `make test`.

-- profileCompleteness stays in [0, 1]. NOT VALID skips the scan of existing rows (right after
-- migration.sql they all hold the column default 0; `csinfra verify` reports any out of range);
-- PostgreSQL checks every INSERT and UPDATE from now on.
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
