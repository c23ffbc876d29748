/**
 * The closed set of error codes Coffer answers with. Each code has one HTTP status, decided here and
 * nowhere else, so REST, NATS and stored idempotent replies always agree.
 */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  IDEMPOTENCY_KEY_REQUIRED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  WALLET_NOT_FOUND: 404,
  WITHDRAWAL_NOT_FOUND: 404,
  TRANSFER_NOT_FOUND: 404,
  CHAMA_NOT_FOUND: 404,
  NOT_INVITED: 404,
  NOT_A_MEMBER: 403,
  INVALID_TRANSITION: 409,
  INSUFFICIENT_FUNDS: 409,
  WALLET_FROZEN: 409,
  WALLET_CLOSED: 409,
  WALLET_NOT_EMPTY: 409,
  WALLET_EXISTS: 409,
  CHAMA_EXISTS: 409,
  CHAMA_FROZEN: 409,
  CHAMA_CLOSED: 409,
  CHAMA_NOT_EMPTY: 409,
  MEMBER_EXISTS: 409,
  NOT_ENOUGH_ADMINS: 409,
  WITHDRAWAL_EXISTS: 409,
  LIMIT_EXCEEDED: 422,
  ASSET_MISMATCH: 422,
  SAME_WALLET: 422,
  IDEMPOTENCY_CONFLICT: 422,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  OVERLOADED: 503,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** A failure that is part of the contract: it has a stable code and a message safe to show anyone. */
export class CofferError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(`${code}: ${detail}`);
    this.status = ERROR_STATUS[code];
  }

  toProblem(instance?: string): Problem {
    return problem(this.code, this.detail, instance, this.extra);
  }
}

/** RFC 9457 problem details with our `code` extension member. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance?: string;
  [extra: string]: unknown;
}

export function problem(code: ErrorCode, detail: string, instance?: string, extra: Record<string, unknown> = {}): Problem {
  return {
    ...extra,
    type: `https://coffer.dev/problems/${code.toLowerCase().replaceAll("_", "-")}`,
    title: code.replaceAll("_", " ").toLowerCase(),
    status: ERROR_STATUS[code],
    code,
    detail,
    ...(instance ? { instance } : {}),
  };
}

/** What a caller hears back: an HTTP-style status and a JSON body (a resource, or a problem). */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** A refusal with a stable code. Its status comes from ERROR_STATUS, the one place that decides it. */
export function refusal(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Reply {
  return { status: ERROR_STATUS[code], body: problem(code, detail, undefined, extra) };
}
