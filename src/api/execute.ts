import type { Reply } from "../../actors/envelope";
import { CofferError } from "../../lib/errors";
import { authorize } from "../../lib/policy";
import { enforce, type RateLimiter, type tiersFrom } from "../security/rate-limit";
import { FieldError, parse } from "./input";
import type { Operation, OperationDeps } from "./operation";
import type { Caller } from "./wallet-service";

export interface Request {
  caller: Caller;
  /** The Idempotency-Key the caller sent, if any. */
  key: string | undefined;
  /** Everything the caller gave (path, query or body, or the NATS payload), not yet checked. */
  input: unknown;
  /** Where a field came from, for error messages (`path.walletId`, `body.amount`). */
  origin: (field: string) => string;
}

export interface Limits {
  limiter: RateLimiter | undefined;
  tiers: ReturnType<typeof tiersFrom>;
}

const KEY_MAX = 255;

/**
 * Runs one operation for one caller, the same way whatever the transport: the money tier, the
 * idempotency key, the input schema, the policy's verdict on the caller's role, then the handler
 * (which checks ownership of the objects concerned). Throws CofferError for the caller's mistakes.
 */
export async function execute(op: Operation, deps: OperationDeps, limits: Limits, req: Request): Promise<Reply> {
  if (limits.limiter && op.tier === "money") await enforce(limits.limiter, req.caller.scope, limits.tiers.money);
  const key = op.idempotent ? idempotencyKey(req.key) : "";
  const input = parse(op.input, req.input, req.origin);
  // Roles other than users are decided by role and permission alone. A user's right to an object
  // depends on owning it, which the handler looks up (hiding another user's object as missing).
  if (req.caller.principal.role !== "user" || !op.ownedBy) authorize(req.caller.principal, op.action);
  try {
    return await op.run({ caller: req.caller, key, deps }, input);
  } catch (error) {
    // A field refused after the schema (an amount above the maximum in this asset) is named the way
    // the schema's refusals are: with where it came from (`body.amount`, `payload.amount`).
    if (error instanceof FieldError) throw error.from(req.origin);
    throw error;
  }
}

function idempotencyKey(key: string | undefined): string {
  if (!key) throw new CofferError("IDEMPOTENCY_KEY_REQUIRED", "send an Idempotency-Key header with every change");
  if (key.length > KEY_MAX || !/^[\x21-\x7e]+$/.test(key)) {
    throw new CofferError("VALIDATION_FAILED", `Idempotency-Key must be 1 to ${KEY_MAX} printable ASCII characters`);
  }
  return key;
}
