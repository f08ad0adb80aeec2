// The application's ORM CLI, run offline: Prisma 6.19 with its WebAssembly schema engine
// (engine: "js") over @prisma/adapter-pg. Prisma 7 and Prisma 6's classic engine need a native
// binary download that is not reachable here. adapter-pg 6.19 needs three shims, each small:
//
//  1. Catalog columns of type `name` and `"char"` (pg_class.relname, pg_constraint.contype, …) are
//     reported as unsupported column types (prisma/orm#27403): they are read as text, which is what
//     they hold.
//  2. Its query for CHECK and EXCLUDE constraints panics the WebAssembly engine ("unreachable") on
//     PostgreSQL 18, which lists NOT NULL constraints there too (contype 'n'), and on any CHECK
//     constraint (csinfra's extras add one). Prisma models neither (the native engine only warns that
//     it does not support CHECK constraints, and never migrates them), so the query skips them.
//  3. executeScript splits a script on every ';', which cuts a function body in two: the script is
//     sent whole (the simple query protocol runs several statements, as a migration is run).
//
// And the shadow database of `migrate dev`/`migrate diff --from-migrations`: adapter-pg names it in
// a config whose connectionString still points at the main database, so its "shadow" would be the
// main database itself; a separate, throw-away database is created instead.
//
// DATABASE_URL names the database (a postgresql:// URL). The tests run this through
// tests/python/prisma_cli.py.
import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

const NAME_OID = 19;
const CHAR_OID = 18;
const TEXT_OID = 25;
const CHECK_CONSTRAINTS = "contype NOT IN ('p', 'u', 'f')";

function shim(adapter: any): any {
  const queryable = Object.getPrototypeOf(Object.getPrototypeOf(adapter));
  if (!queryable.__csinfraShimmed) {
    const performIO = queryable.performIO;
    queryable.performIO = async function (query: any) {
      if (typeof query.sql === "string" && query.sql.includes(CHECK_CONSTRAINTS)) {
        query = { ...query, sql: query.sql.replace(CHECK_CONSTRAINTS, "contype NOT IN ('p', 'u', 'f', 'n', 'c')") };
      }
      const result = await performIO.call(this, query);
      for (const field of result?.fields ?? []) {
        if (field.dataTypeID === NAME_OID || field.dataTypeID === CHAR_OID) field.dataTypeID = TEXT_OID;
      }
      return result;
    };
    queryable.__csinfraShimmed = true;
  }
  adapter.executeScript = async function (script: string) {
    try {
      await this.client.query(script);
    } catch (error) {
      this.onError(error);
    }
  };
  return adapter;
}

class ShimmedPg extends PrismaPg {
  constructor(private readonly url: string) {
    // allowExitOnIdle: the CLI exits as soon as it is done, instead of waiting for idle connections to time out
    super({ connectionString: url, allowExitOnIdle: true });
  }

  async connect() {
    return shim(await super.connect());
  }

  async connectToShadowDb() {
    const admin: any = await this.connect();
    const name = `prisma_migrate_shadow_db_${globalThis.crypto.randomUUID()}`;
    await admin.executeScript(`CREATE DATABASE "${name}"`);
    const url = new URL(this.url);
    url.pathname = `/${name}`;
    const shadow: any = await new ShimmedPg(url.toString()).connect();
    const dispose = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      await dispose();
      await admin.executeScript(`DROP DATABASE "${name}" WITH (FORCE)`);
      await admin.dispose();
    };
    return shadow;
  }
}

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "schema.prisma",
  async adapter() {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error("DATABASE_URL is not set");
    return new ShimmedPg(url);
  },
});
