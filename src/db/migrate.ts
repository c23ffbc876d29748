import type { Sql } from "postgres";

/**
 * Plain SQL migrations, applied in file-name order, each once, under an advisory lock so several
 * nodes starting together do not race.
 */
const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);
const MIGRATION_LOCK_ID = 72_060_001;

/** Every migration this build has, in the order they apply (what /ready checks were applied). */
export function migrationNames(): string[] {
  return [...new Bun.Glob("*.sql").scanSync(MIGRATIONS_DIR.pathname)].sort();
}

export async function migrate(sql: Sql): Promise<string[]> {
  const files = migrationNames();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`;
    await tx`create table if not exists schema_migrations (name text primary key, applied_at timestamptz not null default now())`;
    const done = new Set((await tx`select name from schema_migrations`).map((r) => r.name as string));
    for (const file of files) {
      if (done.has(file)) continue;
      await tx.unsafe(await Bun.file(new URL(file, MIGRATIONS_DIR)).text());
      await tx`insert into schema_migrations (name) values (${file})`;
      applied.push(file);
    }
  });
  return applied;
}
