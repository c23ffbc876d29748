/**
 * The closed set of error codes Coffer answers with. Each code has one HTTP status, decided here and
 * nowhere else, so REST, NATS and stored idempotent replies always agree.
 */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  /** A payout of an asset to where it cannot go: fiat to a chain, a coin to a bank or to a network that does not carry it. */
  UNSUPPORTED_NETWORK: 400,
  /** A payout address (or Lightning invoice) its network would refuse: the detail names the network and the rule, never the address. */
  INVALID_ADDRESS: 400,
  IDEMPOTENCY_KEY_REQUIRED: 400,
  /** Card deposits take fiat assets only (USD, EUR, KES): not a coin. */
  ASSET_NOT_SUPPORTED: 400,
  /** A Stripe webhook whose Stripe-Signature is missing, wrong, too old, from the future, or whose body was changed. */
  WEBHOOK_SIGNATURE_INVALID: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  /** The path exists, not with this method: the answer's Allow header lists the ones it takes. */
  METHOD_NOT_ALLOWED: 405,
  WALLET_NOT_FOUND: 404,
  WITHDRAWAL_NOT_FOUND: 404,
  TRANSFER_NOT_FOUND: 404,
  CHAMA_NOT_FOUND: 404,
  DEPOSIT_NOT_FOUND: 404,
  NOT_INVITED: 404,
  NOT_A_MEMBER: 403,
  /** A command names a member (a deposit's, a role change's, a removal's) this chama does not have. */
  MEMBER_NOT_FOUND: 404,
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
  DEPOSIT_EXISTS: 409,
  /** Refunds of a deposit may not add up to more than was received (less what is refunded, in flight or disputed). */
  REFUND_EXCEEDS_DEPOSIT: 409,
  /** A dispute took more than the wallet held: nothing leaves it until credits have paid that back. */
  WALLET_IN_DEBT: 409,
  LIMIT_EXCEEDED: 422,
  ASSET_MISMATCH: 422,
  SAME_WALLET: 422,
  IDEMPOTENCY_CONFLICT: 422,
  /** Stripe refused the request for a reason a retry will not change (amount below its minimum, …). */
  STRIPE_REFUSED: 422,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  OVERLOADED: 503,
  UNAVAILABLE: 503,
  /** This node has no Stripe key (STRIPE_SECRET_KEY): card deposits, refunds and Stripe webhooks are off. */
  STRIPE_NOT_CONFIGURED: 503,
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
