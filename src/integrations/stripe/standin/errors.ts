/**
 * Errors in Stripe's wire shape: `{ "error": { type, code, message, param, decline_code, ... } }`
 * with Stripe's HTTP statuses, so the official SDK maps them to the same classes it would for the
 * real API (400/404 → StripeInvalidRequestError or StripeIdempotencyError, 401 → authentication,
 * 402 → StripeCardError, 5xx → StripeAPIError).
 */
export type StripeErrorType =
  | "api_error"
  | "card_error"
  | "idempotency_error"
  | "invalid_request_error"
  | "rate_limit_error";

export interface StripeErrorBody {
  type: StripeErrorType;
  message: string;
  code?: string;
  param?: string;
  decline_code?: string;
  doc_url?: string;
  charge?: string;
  payment_intent?: unknown;
  payment_method?: unknown;
  request_log_url?: string;
}

export class StripeApiError extends Error {
  readonly status: number;
  readonly body: StripeErrorBody;
  /**
   * Whether the idempotency layer stores this answer. Stripe saves a result only once an endpoint
   * "began executing": parameter validation failures and unknown objects are not saved (a retry
   * with the same key runs again), business outcomes such as a declined card are.
   */
  readonly storable: boolean;

  constructor(status: number, body: StripeErrorBody, storable = false) {
    super(body.message);
    this.status = status;
    this.body = body;
    this.storable = storable;
  }
}

const DOCS = "https://stripe.com/docs/error-codes";

export function invalidRequest(
  message: string,
  opts: { code?: string; param?: string; status?: number; storable?: boolean } = {},
): StripeApiError {
  const body: StripeErrorBody = { type: "invalid_request_error", message };
  if (opts.code) {
    body.code = opts.code;
    body.doc_url = `${DOCS}/${opts.code.replaceAll("_", "-")}`;
  }
  if (opts.param) body.param = opts.param;
  return new StripeApiError(opts.status ?? 400, body, opts.storable ?? false);
}

/** A business-state refusal (already refunded, wrong status…): stored for idempotent replay. */
export function stateError(message: string, code: string, param?: string): StripeApiError {
  return invalidRequest(message, { code, param, storable: true });
}

export function missingParam(param: string): StripeApiError {
  return invalidRequest(`Missing required param: ${param}.`, { code: "parameter_missing", param });
}

export function unknownParam(param: string): StripeApiError {
  return invalidRequest(`Received unknown parameter: ${param}`, { code: "parameter_unknown", param });
}

export function noSuch(kind: string, id: string, param = "id"): StripeApiError {
  return invalidRequest(`No such ${kind}: '${id}'`, { code: "resource_missing", param, status: 404 });
}

export function unrecognizedUrl(method: string, path: string): StripeApiError {
  return invalidRequest(
    `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    { status: 404 },
  );
}

export function apiError(message: string, status = 500): StripeApiError {
  return new StripeApiError(status, { type: "api_error", message });
}

export function errorJson(err: StripeApiError): string {
  return JSON.stringify({ error: err.body }, null, 2);
}
