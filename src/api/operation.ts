import type { z } from "zod";
import type { Cluster } from "../../actors/cluster";
import type { Reply } from "../../actors/envelope";
import type { ActorHost } from "../../actors/host";
import type { Db } from "../../lib/db";
import type { Action } from "../../lib/policy";
import type { AdminServices } from "../admin/services";
import type { ApiKeys } from "../security/api-keys";
import type { Vault } from "../security/encryption";
import type { WebhookEndpoints } from "../webhooks/endpoints";
import type { StripeRail } from "../integrations/stripe/rail";
import type { ChainOperatorDeps } from "../integrations/chain/operator";
import type { ChamaService } from "./chama-service";
import type { DepositService } from "./deposit-service";
import type { Caller, WalletService } from "./wallet-service";

/**
 * One operation, declared once (src/api/operations/, one file per resource). REST routes, NATS
 * subjects, the rate-limit tier, the policy check, OpenAPI and the typed client are all built from
 * these declarations, so no transport can forget a check another one makes.
 */
export type Tier = "standard" | "money";

export interface Operation<S extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType, N extends string = string> {
  /** `wallets.payments.create`: the NATS subject is `<prefix>.v1.<name>`. */
  name: N;
  method: "GET" | "POST";
  /** REST path; its `:params` are fields of `input`. */
  path: string;
  summary: string;
  /** Path parameters, query (GET) or body (POST) fields, all in one object. */
  input: S;
  /** The success answer's body. */
  output: O;
  /** The success status. */
  status: 200 | 201;
  /** What the caller must be allowed (lib/policy.ts). */
  action: Action;
  /**
   * The object whose owner decides what a user may do, when there is one: the handler looks it up
   * and checks the user against its owner (another user's object answers as a missing one). Without
   * it, `execute` decides for every role from the action alone.
   */
  ownedBy?: "wallet" | "withdrawal" | "transfer" | "chama" | "deposit";
  /** `money`: the stricter per-caller tier applies (everything that moves money out). */
  tier: Tier;
  /** Changes something: an Idempotency-Key is required. */
  idempotent: boolean;
  /** A valid input, for the docs (a test checks it against `input`). */
  example: z.input<S>;
  run(ctx: OperationContext, input: z.output<S>): Promise<Reply>;
}

/** What handlers get: who asks (and the key they gave), and the services. */
export interface OperationContext {
  caller: Caller;
  key: string;
  deps: OperationDeps;
}

export interface OperationDeps {
  db: Db;
  ops: WalletService;
  chamas: ChamaService;
  /** Card deposits through Stripe (answers 503 STRIPE_NOT_CONFIGURED where Stripe is not set up). */
  deposits: DepositService;
  apiKeys: ApiKeys;
  vault: Vault;
  host: ActorHost;
  cluster?: Cluster | undefined;
  /** Transaction monitoring's rules and worker, and the health checks (absent: those routes answer 503). */
  admin?: AdminServices | undefined;
  /** Present when Stripe is configured (reconciliation reads Stripe through it). */
  stripe?: StripeRail | undefined;
  /** Webhooks out: apps' endpoints and their delivery logs (absent: those routes answer 503). */
  webhooks?: WebhookEndpoints | undefined;
  /** The chain payout pipeline's networks (NETWORKS_FILE) and a way to wake its workers (absent: no network is configured). */
  chain?: ChainOperatorDeps | undefined;
}

/**
 * Declares an operation: the identity function, for inference of `input`'s type in `run`, and so
 * the declaration keeps its literal name and its input and output schemas' types (the typed client
 * in client/ is typed by them).
 */
export function operation<N extends string, S extends z.ZodType, O extends z.ZodType>(op: Operation<S, O, N>): Operation<S, O, N> {
  return op;
}

/** A read's answer: the value, with the operation's success status. */
export async function ok(value: Promise<Record<string, unknown>> | Record<string, unknown>): Promise<Reply> {
  return { status: 200, body: await value };
}
