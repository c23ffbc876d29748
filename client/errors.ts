import type { Answer, ErrorCode, FieldError, OperationName } from "./types";

/**
 * Coffer answered with a problem (RFC 9457 problem details with a stable `code`). Thrown after the
 * last attempt for a retryable problem (503, 429), at once for every other one.
 */
export class CofferApiError extends Error {
  override readonly name = "CofferApiError";
  /** The operation called (`wallets.payments.create`). */
  readonly operation: OperationName;
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  /** Field errors of a VALIDATION_FAILED. */
  readonly errors: FieldError[] | undefined;
  /** Seconds to wait before asking again (429, and 503 when the node says). */
  readonly retryAfter: number | undefined;
  /** The node's x-request-id (HTTP): quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** The key every attempt of this call carried (changes only). */
  readonly idempotencyKey: string | undefined;
  /** Attempts made, this one included. */
  readonly attempts: number;
  /** The problem details as they came (`type`, `title`, `instance`, …). */
  readonly problem: Readonly<Record<string, unknown>>;

  constructor(init: {
    operation: OperationName;
    status: number;
    code: ErrorCode;
    detail: string;
    errors?: FieldError[] | undefined;
    retryAfter?: number | undefined;
    requestId?: string | undefined;
    idempotencyKey?: string | undefined;
    attempts?: number;
    problem?: Record<string, unknown>;
  }) {
    super(`${init.operation}: ${init.code} (${init.status}): ${init.detail}`);
    this.operation = init.operation;
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail;
    this.errors = init.errors;
    this.retryAfter = init.retryAfter;
    this.requestId = init.requestId;
    this.idempotencyKey = init.idempotencyKey;
    this.attempts = init.attempts ?? 1;
    this.problem = init.problem ?? {};
  }

  /**
   * The error for an answer of 400 or more. An answer that is not a problem (a proxy's 502 page)
   * gets the nearest code: UNAVAILABLE for 502, 503 and 504, RATE_LIMITED for 429, else INTERNAL.
   */
  static fromAnswer(operation: OperationName, answer: Answer, idempotencyKey: string | undefined, attempts: number): CofferApiError {
    const body = isProblem(answer.body) ? answer.body : undefined;
    const code = body?.code ?? nearestCode(answer.status);
    const detail = typeof body?.detail === "string" ? body.detail : `HTTP ${answer.status} without problem details`;
    const retryAfter = answer.retryAfter ?? (typeof body?.retryAfter === "number" ? body.retryAfter : undefined);
    return new CofferApiError({
      operation,
      status: answer.status,
      code,
      detail,
      errors: Array.isArray(body?.errors) ? (body.errors as FieldError[]) : undefined,
      retryAfter,
      requestId: answer.requestId,
      idempotencyKey,
      attempts,
      problem: body ?? {},
    });
  }
}

/** No answer came (connection refused or reset, every attempt timed out), after every attempt allowed. */
export class CofferNetworkError extends Error {
  override readonly name = "CofferNetworkError";

  constructor(
    readonly operation: OperationName,
    /** The key every attempt carried (changes only): the change may have happened; retry with this key to find out. */
    readonly idempotencyKey: string | undefined,
    readonly attempts: number,
    cause: unknown,
  ) {
    super(`${operation}: no answer after ${attempts} attempt${attempts === 1 ? "" : "s"}${idempotencyKey ? ` (Idempotency-Key ${idempotencyKey})` : ""}`, { cause });
  }
}

function isProblem(body: unknown): body is Record<string, unknown> & { code: ErrorCode } {
  return typeof body === "object" && body !== null && typeof (body as { code?: unknown }).code === "string";
}

function nearestCode(status: number): ErrorCode {
  if (status === 429) return "RATE_LIMITED";
  if (status === 502 || status === 503 || status === 504) return "UNAVAILABLE";
  return "INTERNAL";
}
