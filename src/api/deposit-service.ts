import type Stripe from "stripe";
import type { z } from "zod";
import type { Reply } from "../../actors/envelope";
import type { Router } from "../../actors/router";
import { decode } from "../../actors/codec";
import type { DepositCommand } from "../../machines/deposit.events";
import { depositMachine, type DepositContext } from "../../machines/deposit.machine";
import { transition } from "xstate";
import type { Db } from "../../lib/db";
import { CofferError, ERROR_STATUS, refusal, type ErrorCode } from "../../lib/errors";
import { log } from "../../lib/log";
import { authorize } from "../../lib/policy";
import { claimOf as claimOfPrincipal, SYSTEM_CLAIM } from "../../lib/principal";
import { METADATA, paymentIntentKey, stripeProblem } from "../integrations/stripe/client";
import { crashPoint } from "../crash";
import { isCardAsset, stripeCurrencyOf, toStripeAmount } from "../integrations/stripe/money";
import type { Vault } from "../security/encryption";
import type { DepositSaga } from "../workers/deposit-saga";
import { depositRefundView, depositView } from "./deposit-views";
import { idFromKey } from "./ids";
import type { CreateDeposit, CreateRefund } from "./deposit-schemas";
import { amountIn, claimOf, type Caller, type WalletService } from "./wallet-service";

/**
 * Card deposits, refunds and reads, independent of transport (REST and NATS both call these).
 *
 * A deposit: the caller's wallet (theirs, or any with `deposits:write`), a fiat asset, an exact
 * amount. Stripe makes the PaymentIntent FIRST, under an idempotency key derived from the
 * caller's key, and only then is the deposit recorded (by its actor, under the caller's key): so a
 * Stripe that fails or does not answer leaves nothing half-made here (503, retry), and the retry,
 * with the same key, gets the same PaymentIntent from Stripe and the same deposit from its actor.
 * The wallet is credited later, when Stripe says the money arrived (src/integrations/stripe/).
 *
 * A refund: reserved in the deposit's actor (never past what was received), then its saga steps
 * are taken at once (src/workers/deposit-saga.ts: the wallet pays it back, Stripe is asked) and the
 * caller hears where it got to; whatever is left is finished by the saga's worker.
 */
export class DepositService {
  private saga: DepositSaga | undefined;

  constructor(
    private readonly db: Db,
    private readonly router: Router,
    private readonly wallets: WalletService,
    private readonly vault: Vault,
    private readonly maxAmountMajor: bigint,
    private readonly stripe: Stripe | undefined,
  ) {}

  /** The saga that takes a refund's steps (made after this service: it sends through it). */
  useSaga(saga: DepositSaga): void {
    this.saga = saga;
  }

  get configured(): boolean {
    return this.stripe !== undefined;
  }

  async create(caller: Caller, key: string, walletId: string, input: z.infer<typeof CreateDeposit>): Promise<Reply> {
    const stripe = this.stripeOrRefuse();
    const wallet = await this.wallets.meta(walletId);
    authorize(caller.principal, "deposit.create", [wallet.ownerId], "WALLET_NOT_FOUND");
    if (!isCardAsset(wallet.asset)) throw new CofferError("ASSET_NOT_SUPPORTED", `card deposits take USD, EUR or KES; this wallet holds ${wallet.asset}`);
    const amount = amountIn(input.amount, wallet.asset, this.maxAmountMajor);
    const depositId = idFromKey("deposit", caller.scope, key);
    const claim = claimOf(this.vault, caller, key, "deposit.create", walletId, { amount });
    // A key already used for something else is a conflict before Stripe is asked anything.
    const [prior] = await this.db`select fingerprint from idempotency_keys where scope = ${claim.scope} and key = ${claim.key}`;
    if (prior && prior.fingerprint !== claim.fingerprint) throw new CofferError("IDEMPOTENCY_CONFLICT", "this idempotency key was already used with a different request");
    if (!prior) await this.assertTakesMoney(walletId);

    let intent: Stripe.PaymentIntent;
    try {
      intent = await stripe.paymentIntents.create(
        {
          amount: toStripeAmount(amount),
          currency: stripeCurrencyOf(wallet.asset),
          // Cards, confirmed in the app (Stripe.js): nothing that needs a redirect.
          automatic_payment_methods: { enabled: true, allow_redirects: "never" },
          metadata: { [METADATA.depositId]: depositId, [METADATA.walletId]: walletId },
        },
        { idempotencyKey: paymentIntentKey(depositId) },
      );
    } catch (error) {
      throw stripeProblem(error, "creating a PaymentIntent");
    }
    if (intent.amount !== Number(amount) || intent.currency !== stripeCurrencyOf(wallet.asset) || intent.metadata?.[METADATA.depositId] !== depositId || !intent.client_secret) {
      log("error", "alert: Stripe answered a PaymentIntent that is not the one asked for", { depositId, paymentIntentId: intent.id });
      throw new CofferError("UNAVAILABLE", "the payment provider answered unexpectedly; retry with the same idempotency key");
    }
    crashPoint("deposit.after_payment_intent");

    const reply = await this.send(depositId, {
      kind: "deposit",
      command: { type: "deposit.open", depositId, walletId, ownerId: wallet.ownerId, asset: wallet.asset, amount, paymentIntentId: intent.id, at: now() },
      idempotency: claim,
      principal: claimOfPrincipal(caller.principal),
    });
    if (reply.status === 201) return withSecret(reply.body, intent.client_secret);
    if (reply.body.code === "DEPOSIT_EXISTS") {
      // Coffer took it up from Stripe's own event first (the node died after Stripe answered, and the
      // payment went ahead): it is this deposit.
      const found = await this.read(depositId);
      if (found?.context.paymentIntentId === intent.id) {
        const v = depositView(found.context, found.status);
        return withSecret({ id: v.id, walletId: v.walletId, asset: v.asset, amount: v.amount, status: v.status, stripe: v.stripe, createdAt: v.createdAt }, intent.client_secret);
      }
    }
    return reply;
  }

  async get(caller: Caller, depositId: string): Promise<Record<string, unknown>> {
    const found = await this.read(depositId);
    if (!found) throw new CofferError("DEPOSIT_NOT_FOUND", "deposit not found");
    authorize(caller.principal, "deposit.read", [found.context.ownerId], "DEPOSIT_NOT_FOUND");
    return depositView(found.context, found.status);
  }

  async refund(caller: Caller, key: string, depositId: string, input: z.infer<typeof CreateRefund>): Promise<Reply> {
    this.stripeOrRefuse();
    const found = await this.read(depositId);
    if (!found) throw new CofferError("DEPOSIT_NOT_FOUND", "deposit not found");
    authorize(caller.principal, "deposit.refund", [found.context.ownerId], "DEPOSIT_NOT_FOUND");
    const asset = found.context.asset;
    if (!isCardAsset(asset)) throw new Error(`deposit ${depositId} holds ${asset}`); // (only card assets are ever deposited)
    const amount = input.amount === undefined ? undefined : amountIn(input.amount, asset, this.maxAmountMajor);
    const refundId = idFromKey("refund", caller.scope, key);
    const reply = await this.send(depositId, {
      kind: "deposit",
      command: { type: "deposit.refund.request", refundId, ...(amount === undefined ? {} : { amount }), at: now() },
      idempotency: claimOf(this.vault, caller, key, "deposit.refund", depositId, { amount }),
      principal: claimOfPrincipal(caller.principal),
    });
    if (reply.status >= 300) return reply;
    await this.saga?.driveRefund(depositId, refundId);
    const after = await this.read(depositId);
    const refund = after?.context.refunds[refundId];
    if (!after || !refund) return reply; // (the request's answer: the refund as it was asked for)
    if (refund.status === "canceled") {
      const code = (refund.reason && Object.hasOwn(ERROR_STATUS, refund.reason) ? refund.reason : "INSUFFICIENT_FUNDS") as ErrorCode;
      return refusal(code, REFUSED_BECAUSE[code] ?? "the wallet cannot pay this refund back");
    }
    return { status: 201, body: depositRefundView(after.context, refundId, refund) };
  }

  /** Coffer's own steps (the saga, Stripe's events), in their own scope, keyed by what they are. */
  system(depositId: string, key: string, command: DepositCommand): Promise<Reply> {
    return this.send(depositId, { kind: "deposit", command, idempotency: { scope: "system", key, fingerprint: key }, principal: SYSTEM_CLAIM });
  }

  /** A deposit as committed (the actor's snapshot), or undefined. */
  async read(depositId: string): Promise<{ context: DepositContext; status: string } | undefined> {
    const [row] = await this.db`select status, snapshot::text as snapshot from deposits where id = ${depositId}`;
    if (!row) return undefined;
    return { context: decode<{ context: DepositContext }>(row.snapshot).context, status: row.status };
  }

  /**
   * Whether `command` would change the deposit as committed (the machine, run on the committed
   * snapshot, emits more than a refusal). Stripe repeats itself (retries, the same news in several
   * events): a report that changes nothing need not go to the actor and leave a record behind. Only
   * a hint: the actor decides again on its own state, so a stale "yes" is harmless.
   */
  async wouldChange(depositId: string, command: DepositCommand): Promise<boolean> {
    const [row] = await this.db`select snapshot::text as snapshot from deposits where id = ${depositId}`;
    if (!row) return true;
    const [, actions] = transition(depositMachine, depositMachine.resolveState(decode(row.snapshot)), command);
    return (actions as { type: string; params?: { event?: { type?: string } } }[]).some((a) => a.type === "xstate.emit" && a.params?.event?.type !== "rejected");
  }

  /** The deposit recorded for a PaymentIntent, if any. */
  async byPaymentIntent(paymentIntentId: string): Promise<{ id: string; walletId: string; asset: string } | undefined> {
    const [row] = await this.db`select id, wallet_id, asset from deposits where payment_intent_id = ${paymentIntentId}`;
    return row ? { id: row.id, walletId: row.wallet_id, asset: row.asset } : undefined;
  }

  private send(depositId: string, envelope: Parameters<Router["send"]>[1]): Promise<Reply> {
    return this.router.send({ kind: "deposit", id: depositId }, envelope);
  }

  private stripeOrRefuse(): Stripe {
    if (!this.stripe) throw new CofferError("STRIPE_NOT_CONFIGURED", "card payments are not configured on this node (STRIPE_SECRET_KEY)");
    return this.stripe;
  }

  /** No PaymentIntent for a wallet that could not take its money. */
  private async assertTakesMoney(walletId: string): Promise<void> {
    const [row] = await this.db`select status from wallets where id = ${walletId}`;
    if (row?.status === "closed") throw new CofferError("WALLET_CLOSED", "the wallet is closed");
    if (row?.status === "frozen") throw new CofferError("WALLET_FROZEN", "the wallet is frozen");
  }
}

const REFUSED_BECAUSE: Partial<Record<ErrorCode, string>> = {
  INSUFFICIENT_FUNDS: "the money of this deposit was spent: the wallet's available balance does not cover the refund",
  WALLET_IN_DEBT: "the wallet is in debt after a dispute: it cannot pay a refund back",
  WALLET_FROZEN: "the wallet is frozen",
  WALLET_CLOSED: "the wallet is closed",
};

function withSecret(body: Record<string, unknown>, clientSecret: string): Reply {
  return { status: 201, body: { ...body, stripe: { ...(body.stripe as Record<string, unknown>), clientSecret } } };
}

function now(): string {
  return new Date().toISOString();
}
