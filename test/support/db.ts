import postgres from "postgres";
import { startEmbeddedPostgres } from "../../src/db/embedded";

/**
 * Each test file gets its own fresh database on the Postgres at DATABASE_URL (default: the local
 * server). Where nothing answers, the embedded Postgres is started instead, so a fresh clone runs.
 */
export const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/postgres";

let serverUrl: Promise<string> | undefined;

async function reachable(url: string): Promise<boolean> {
  const probe = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await probe`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await probe.end({ timeout: 1 });
  }
}

/** A URL to a maintenance database on the test server (used to create and drop test databases). */
export function testServerUrl(): Promise<string> {
  serverUrl ??= (async () => {
    const wanted = process.env.DATABASE_URL ?? DEFAULT_URL;
    if (await reachable(wanted)) return wanted;
    console.warn(`no Postgres answers at ${new URL(wanted).host}; starting the embedded one for the tests`);
    const embedded = await startEmbeddedPostgres(".coffer/test", () => {});
    const url = new URL(embedded.url);
    url.pathname = "/postgres";
    return url.toString();
  })();
  return serverUrl;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(label = "t"): Promise<TestDatabase> {
  const admin = postgres(await testServerUrl(), { max: 1, onnotice: () => {} });
  const name = `coffer_${label.replace(/[^a-z0-9]/gi, "").toLowerCase().slice(0, 20)}_${crypto.randomUUID().slice(0, 8)}`;
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  const url = new URL(await testServerUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const a = postgres(await testServerUrl(), { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists "${name}" with (force)`);
      await a.end();
    },
  };
}
