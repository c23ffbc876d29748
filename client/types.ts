import type { z } from "zod";
import type { ErrorCode } from "../lib/errors";
import type { DeclaredOperation, OperationName } from "../src/api/operations";

/**
 * The client's types, all taken from the operation table (src/api/operations/) with `import type`:
 * nothing of the server runs in an app that imports the client.
 */
export type { ErrorCode, OperationName };

/** The declaration named N (an entry made by `.map` over several actions carries all their names). */
type Declared<N extends OperationName> = DeclaredOperation extends infer O ? (O extends { name: infer M } ? (N extends M ? O : never) : never) : never;

/** What the caller gives: path parameters and query or body fields in one object, as the schema takes them. */
export type OperationInput<N extends OperationName> = z.input<Declared<N>["input"]>;

/** What a success answers with. */
export type OperationOutput<N extends OperationName> = z.output<Declared<N>["output"]>;

/** What the client must know about an operation at run time (client/routes.ts, generated from the table). */
export interface Route {
  method: "GET" | "POST";
  /** REST path; its `:params` are fields of the input. */
  path: string;
  /** Changes something: every call carries an Idempotency-Key, the same on each retry. */
  idempotent: boolean;
}

/** How hard one call tries. Each has a client-wide default (ClientOptions) that a call may override. */
export interface RetryOptions {
  /** Attempts per call, the first included (default 5). */
  maxAttempts?: number;
  /** How long one attempt may wait for its answer (default 10 s); past it the attempt counts as a network error. */
  attemptTimeoutMs?: number;
  /** How long the whole call may take, waits between attempts included (default 30 s). */
  deadlineMs?: number;
}

export interface CallOptions extends RetryOptions {
  /** The Idempotency-Key to send (default: a new `crypto.randomUUID()` per call). Ignored by reads. */
  idempotencyKey?: string;
  /** Gives up the call (no further attempt); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ClientOptions extends RetryOptions {
  /** A bearer access token, or a function that returns a fresh one (asked before every attempt). */
  token?: string | (() => string | Promise<string>);
  /** A service's API key (`cof_…`), sent as X-Api-Key. */
  apiKey?: string;
  /** First pause between attempts (default 100 ms); it doubles each time, with jitter. */
  retryDelayMs?: number;
  /** Longest pause between attempts (default 2 s). */
  maxRetryDelayMs?: number;
  /** The longest Retry-After the client waits for (default 10 s); a longer one ends the call with the error. */
  maxRetryAfterMs?: number;
}

/** The arguments of an operation's method: the input may be left out when nothing is required. */
export type OperationArgs<N extends OperationName> = {} extends OperationInput<N>
  ? [input?: OperationInput<N>, options?: CallOptions]
  : [input: OperationInput<N>, options?: CallOptions];

export type OperationMethod<N extends OperationName> = (...args: OperationArgs<N>) => Promise<OperationOutput<N>>;

/** `api-keys` → `apiKeys`. */
export type CamelCase<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;
type Head<S extends string> = S extends `${infer H}.${string}` ? H : S;
type HeadsUnder<P extends string> = OperationName extends infer N ? (N extends `${P}${infer Rest}` ? Head<Rest> : never) : never;

/** The operations as nested methods: `wallets.payments.create` is `client.wallets.payments.create(input)`. */
export type OperationTree<P extends string = ""> = {
  readonly [H in HeadsUnder<P> as CamelCase<H>]: `${P}${H}` extends OperationName ? OperationMethod<`${P}${H}`> : OperationTree<`${P}${H}.`>;
};

/** One client, whatever carries its calls (HTTP: client/index.ts; NATS: client/nats.ts). */
export type CofferClient = OperationTree & {
  /** Any operation by its name: `call("wallets.payments.create", { walletId, amount: "2.50" })`. */
  call<N extends OperationName>(name: N, ...args: OperationArgs<N>): Promise<OperationOutput<N>>;
};

/** One attempt of a call, as the core hands it to a transport. */
export interface Attempt {
  name: OperationName;
  route: Route;
  /** The whole input: path parameters, query or body fields. */
  input: Record<string, unknown>;
  /** Authorization / X-Api-Key, and Idempotency-Key for changes. */
  headers: Record<string, string>;
  /** How long this attempt may wait for its answer. */
  timeoutMs: number;
  /** The caller's signal, if any. */
  signal: AbortSignal | undefined;
}

/** An answer that came back (success or problem). */
export interface Answer {
  status: number;
  body: unknown;
  /** Seconds, from the Retry-After header or the problem's `retryAfter`. */
  retryAfter?: number | undefined;
  /** The node's x-request-id, when the transport has one. */
  requestId?: string | undefined;
}

/**
 * What carries one attempt: resolves with the answer, or throws when none came (connection refused
 * or reset, timeout): the core then retries with the same Idempotency-Key.
 */
export interface Transport {
  send(attempt: Attempt): Promise<Answer>;
}

/** A validation problem's field errors. */
export interface FieldError {
  path: string;
  message: string;
}

