import type { Idempotency, Reply } from "../../actors/envelope";
import type { JSONValue, TransactionSql } from "postgres";
import type { Db } from "../../lib/db";
import { refusal } from "../../lib/errors";
import type { Vault } from "../security/encryption";

type Sql = TransactionSql;

/**
 * Exactly-once for an operation that runs outside any actor (API keys): the first answer under a
 * caller's idempotency key is stored with it, in the same transaction as the work, so a retry with
 * the same key and request gets that answer back and does nothing again; another request under the
 * key is a 422. The answer is stored sealed (it may hold a secret shown once) and expires with the
 * other keys. Concurrent retries of one key wait for each other on an advisory lock.
 */
export async function exactlyOnce(db: Db, vault: Vault, claim: Idempotency, run: (sql: Sql) => Promise<Reply>): Promise<Reply> {
  const id = `${claim.scope}\n${claim.key}`;
  return db.begin(async (sql) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${id}, 0))`;
    const [prior] = await sql`select fingerprint, status, body from idempotency_keys where scope = ${claim.scope} and key = ${claim.key}`;
    if (prior) {
      if (prior.fingerprint !== claim.fingerprint || !prior.body?.sealed) {
        return refusal("IDEMPOTENCY_CONFLICT", "this idempotency key was already used with a different request");
      }
      return { status: prior.status as number, body: vault.open<Record<string, unknown>>(prior.body.sealed, id) };
    }
    const reply = await run(sql);
    const sealed = { sealed: vault.seal(reply.body, id) };
    await sql`insert into idempotency_keys (scope, key, fingerprint, status, body) values (${claim.scope}, ${claim.key}, ${claim.fingerprint}, ${reply.status}, ${sql.json(sealed as unknown as JSONValue)})`;
    return reply;
  }) as Promise<Reply>;
}
