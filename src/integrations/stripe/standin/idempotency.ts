import { StripeApiError } from "./errors";

/**
 * Stripe's idempotency: a POST with an `Idempotency-Key` runs once; the same key with the same
 * parameters replays the first answer (status and body, with `Idempotent-Replayed: true`); the same
 * key with other parameters or another endpoint is a 400 `idempotency_error`. Keys belong to the API
 * key (and Connect account) that used them, expire after 24 hours, and at most `maxKeys` are kept
 * (the oldest are forgotten first). A request arriving while the first with its key is still
 * running waits for it (up to `waitMs`, then 409 like Stripe's concurrent-use error).
 */

export interface StoredResponse {
  status: number;
  body: string;
  requestId: string;
}

interface Entry {
  fingerprint: string;
  endpoint: string;
  createdAt: number;
  response: StoredResponse | null;
  done: Promise<void>;
  finish: () => void;
}

export type Begin =
  | { kind: "run"; complete: (response: StoredResponse | null) => void }
  | { kind: "replay"; response: StoredResponse };

const DAY_MS = 24 * 60 * 60 * 1000;

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxKeys = 10_000,
    private readonly waitMs = 30_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    for (const e of this.entries.values()) e.finish();
    this.entries.clear();
  }

  /**
   * Claim `key` for a request, or get the answer to replay. `complete(response)` stores the answer
   * (or, with null, releases the key so a retry runs again: answers Stripe does not save).
   */
  async begin(scope: string, key: string, endpoint: string, fingerprint: string): Promise<Begin> {
    const id = `${scope}\u0000${key}`;
    for (let round = 0; round < 3; round++) {
      const existing = this.entries.get(id);
      if (existing && Date.now() - existing.createdAt > DAY_MS) this.entries.delete(id);
      const entry = this.entries.get(id);
      if (!entry) break;
      if (entry.endpoint !== endpoint) {
        throw idempotencyError(
          `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${entry.endpoint}' vs '${endpoint}'). Try using a key other than '${key}' if you meant to execute a different request.`,
        );
      }
      if (entry.response === null) {
        const timedOut = await Promise.race([entry.done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), this.waitMs))]);
        if (timedOut) {
          throw new StripeApiError(409, {
            type: "idempotency_error",
            code: "idempotency_key_in_use",
            message: `There is currently another in-progress request using this Idempotency-Key (that probably means you submitted twice, and the other request is still going through): '${key}'. Please try again later.`,
          });
        }
        continue; // finished: replay it, or run if it released the key
      }
      if (entry.fingerprint !== fingerprint) {
        throw idempotencyError(
          `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
        );
      }
      return { kind: "replay", response: entry.response };
    }
    let finish = () => {};
    const done = new Promise<void>((r) => (finish = r));
    const entry: Entry = { fingerprint, endpoint, createdAt: Date.now(), response: null, done, finish };
    this.entries.set(id, entry);
    this.evict();
    return {
      kind: "run",
      complete: (response) => {
        if (response === null) {
          if (this.entries.get(id) === entry) this.entries.delete(id);
        } else {
          entry.response = response;
        }
        entry.finish();
      },
    };
  }

  private evict(): void {
    while (this.entries.size > this.maxKeys) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.get(oldest)?.finish();
      this.entries.delete(oldest);
    }
  }
}

function idempotencyError(message: string): StripeApiError {
  return new StripeApiError(400, { type: "idempotency_error", message });
}

/** Parameters in a canonical form (sorted keys), so equal requests compare equal. */
export function fingerprintOf(params: unknown): string {
  return JSON.stringify(sortKeys(params));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}
