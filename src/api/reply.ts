import type { Reply } from "../../actors/envelope";
import { isDatabaseUnavailable } from "../db/errors";
import { CofferError, refusal } from "../../lib/errors";
import { log, reason } from "../../lib/log";
import { redact } from "../../lib/redact";

/** Any failure as an outcome a caller may see: contract errors as they are, outages as 503, the rest as 500 (logged). */
export function replyOf(error: unknown, context: Record<string, unknown> = {}): Reply {
  if (error instanceof CofferError) {
    const body = error.toProblem();
    return { status: error.status, body: { ...body, detail: redact(body.detail) } };
  }
  if (isDatabaseUnavailable(error)) {
    log("warn", "database unavailable", { ...context, error: reason(error) });
    return refusal("UNAVAILABLE", "the ledger is unavailable; retry with the same idempotency key");
  }
  log("error", "unhandled error", { ...context, error: reason(error) });
  return refusal("INTERNAL", "something went wrong on our side; it has been logged");
}
