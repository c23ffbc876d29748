import type { Reply } from "../../actors/envelope";
import { databaseFailure, unavailable } from "../db/errors";
import { CofferError, refusal } from "../../lib/errors";
import { log, reason } from "../../lib/log";
import { redactSecrets } from "../../lib/redact";

/** Any failure as an outcome a caller may see: contract errors as they are, outages as 503, the rest as 500 (logged). */
export function replyOf(error: unknown, context: Record<string, unknown> = {}): Reply {
  if (error instanceof CofferError) {
    // The detail is our sentence; any caller text in it was quoted (and redacted) where it was written.
    const body = error.toProblem();
    return { status: error.status, body: { ...body, detail: redactSecrets(body.detail) } };
  }
  // lib/db-errors.ts decides, per SQLSTATE class, which database failures are outages (503, come
  // back after Retry-After) and which are bugs (500).
  const failure = databaseFailure(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (failure === "unavailable") {
    log("warn", "database unavailable", { ...context, code, error: reason(error) });
    return unavailable();
  }
  log("error", "unhandled error", { ...context, ...(failure ? { code } : {}), error: reason(error) });
  return refusal("INTERNAL", "something went wrong on our side; it has been logged");
}
