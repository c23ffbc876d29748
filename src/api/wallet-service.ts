import type { Envelope, Idempotency, Reply } from "../../actors/envelope";
import type { Router } from "../../actors/router";
import type { WalletCommand } from "../../machines/wallet.events";
import type { WithdrawalStep } from "../../machines/withdrawal.machine";
import { paidByProvider } from "../../lib/bank-accounts";
import type { Db } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import type { Asset } from "../../lib/assets";
import { formatAmount, maxMinorFor, parseAmount } from "../../lib/money";
import { payoutMismatch } from "../../lib/networks";
import { ADDRESS_RULES, validateAddress, type LightningNetwork } from "../../lib/addresses";
import { fingerprint, idFromKey, newId } from "./ids";
import { FieldError } from "./input";
import type { z } from "zod";
import type { CreateTransfer, CreateWallet, MoneyIn, RequestWithdrawal } from "./schemas";
import { LruCache } from "../../lib/lru";
import type { Vault } from "../security/encryption";
import type { ChainLimits } from "../integrations/chain/limits";
import { fillIn, maskDestination } from "./views";
import { WithdrawalView } from "./outputs";
import { authorize, type Action } from "../../lib/policy";
import { claimOf as claimOfPrincipal, SYSTEM_CLAIM, type Principal } from "../../lib/principal";

/** Who is asking: the proven principal, and the scope its idempotency keys live in. */
export interface Caller {
  scope: string;
  principal: Principal;
}

/** What never changes about a wallet, so it is cached once seen. */
interface WalletMeta {
  asset: Asset;
  ownerId: string;
}

/**
 * Every operation on money, independent of transport: REST and NATS both call these. Inputs are
 * already shape-checked; here they are checked against the world (does the wallet exist, which
 * asset and so which scale), turned into a command with fresh ids and a time, and routed to the
 * wallet's actor. The outcome comes back from the actor after its commit. Every operation first
 * asks the policy (lib/policy.ts) whether this caller may do it to this wallet.
 */
/** What a payout processor (or, for cancel, the owner) may do to a withdrawal; a paid payout's return is Stripe's word only. */
export type ProcessorStep = Extract<WithdrawalStep, "process" | "complete" | "fail" | "cancel">;

/** What never changes about a withdrawal: its wallet, and the kind of place it goes to. */
interface WithdrawalMeta {
  walletId: string;
  destinationType: string;
  asset: string;
  network: string | undefined;
}

export class WalletService {
  private readonly wallets = new LruCache<string, WalletMeta>(100_000);
  private readonly withdrawalMetas = new LruCache<string, WithdrawalMeta>(100_000);
  /** Stripe pays withdrawals to provider-held destinations (src/workers/payout-worker.ts): processors leave them alone. */
  private stripePaysOut = false;
  /** The request-time limits of the networks Coffer pays itself (NETWORKS_FILE), once set. */
  private chainLimits: ChainLimits | undefined;

  constructor(
    private readonly db: Db,
    private readonly router: Router,
    private readonly maxAmountMajor: bigint,
    private readonly vault: Vault,
    /** What crypto addresses are checked against: the node's clock (invoices expire) and the Lightning network. */
    private readonly addresses: AddressPolicy = DEFAULT_ADDRESS_POLICY,
  ) {}

  createWallet(caller: Caller, key: string, input: z.infer<typeof CreateWallet>): Promise<Reply> {
    authorize(caller.principal, "wallet.create");
    if (caller.principal.role === "user" && input.ownerId !== caller.principal.sub) {
      throw new CofferError("FORBIDDEN", "users open wallets for themselves only");
    }
    const walletId = idFromKey("wallet", caller.scope, key);
    return this.send(walletId, caller, key, "wallet.create", "", input, {
      type: "wallet.open",
      walletId,
      ownerId: input.ownerId,
      asset: input.asset,
      at: now(),
    });
  }

  /** Funding from outside (an admin operation; Stripe deposits replace it for end users later). */
  credit(caller: Caller, key: string, walletId: string, input: z.infer<typeof MoneyIn>): Promise<Reply> {
    return this.moveMoney("wallet.credit", "wallet.credit", caller, key, walletId, input);
  }

  /** An immediate debit, refused with INSUFFICIENT_FUNDS when available is short. */
  pay(caller: Caller, key: string, walletId: string, input: z.infer<typeof MoneyIn>): Promise<Reply> {
    return this.moveMoney("wallet.payment", "wallet.pay", caller, key, walletId, input);
  }

  private async moveMoney(
    type: "wallet.credit" | "wallet.payment",
    action: Action,
    caller: Caller,
    key: string,
    walletId: string,
    input: z.infer<typeof MoneyIn>,
  ) {
    const wallet = await this.walletFor(caller, action, walletId);
    const amount = this.amount(input.amount, wallet.asset);
    return this.send(walletId, caller, key, type, walletId, { amount, reference: input.reference }, {
      type,
      journalId: newId(),
      amount,
      ...(input.reference ? { reference: input.reference } : {}),
      at: now(),
    });
  }

  async setStatus(caller: Caller, key: string, walletId: string, action: "freeze" | "unfreeze" | "close"): Promise<Reply> {
    await this.walletFor(caller, action === "close" ? "wallet.close" : "wallet.freeze", walletId);
    return this.send(walletId, caller, key, `wallet.${action}`, walletId, {}, { type: `wallet.${action}`, at: now() });
  }

  async requestWithdrawal(caller: Caller, key: string, walletId: string, input: z.infer<typeof RequestWithdrawal>): Promise<Reply> {
    const wallet = await this.walletFor(caller, "withdrawal.request", walletId);
    const amount = this.amount(input.amount, wallet.asset);
    payableTo(wallet.asset, input.destination);
    await payableAddress(this.db, this.addresses, caller, key, wallet.asset, amount, input.destination);
    const network = input.destination.type === "crypto" ? input.destination.network : undefined;
    const reserved = network && this.chainLimits ? await this.chainLimits.reserve({ walletId, key, network, asset: wallet.asset, amountMinor: amount }) : undefined;
    const withdrawalId = newId();
    const reply = await this.send(walletId, caller, key, "withdrawal.request", walletId, { amount, destination: input.destination }, {
      type: "withdrawal.request",
      withdrawalId,
      amount,
      // Sealed here, bound to the withdrawal's id: past this line only the masked form is readable.
      destination: { masked: maskDestination(input.destination, formatAmount(amount, wallet.asset)), sealed: this.vault.seal(input.destination, withdrawalId) },
      at: now(),
    });
    if (reserved && this.chainLimits) {
      // Refused: what this call reserved goes back. Unknown (5xx): kept, the retry under this key finds it.
      if (reply.status >= 400 && reply.status < 500 && reserved.fresh) await this.chainLimits.release(reserved.reservation);
      else if (reply.status < 300 && typeof reply.body.id === "string") await this.chainLimits.bind(reserved.reservation, reply.body.id);
    }
    return reply;
  }

  /** Withdrawals to the networks of NETWORKS_FILE are checked against their limits when requested. */
  useChainLimits(limits: ChainLimits): void {
    this.chainLimits = limits;
  }

  /** From now on, withdrawals to `bank_token` and `stripe_account` destinations are Stripe's to pay (set when Stripe is configured). */
  useStripePayouts(): void {
    this.stripePaysOut = true;
  }

  /** Whether the payout worker, not a processor, pays withdrawals to this kind of destination. */
  paidThroughStripe(destinationType: unknown): boolean {
    return this.stripePaysOut && paidByProvider(destinationType);
  }

  async stepWithdrawal(caller: Caller, key: string, withdrawalId: string, step: ProcessorStep, reason?: string): Promise<Reply> {
    const { walletId, destinationType, asset, network } = await this.withdrawalMeta(withdrawalId);
    const owner = (await this.meta(walletId)).ownerId;
    authorize(caller.principal, step === "cancel" ? "withdrawal.cancel" : "withdrawal.process", [owner], "WITHDRAWAL_NOT_FOUND");
    // A processor's word on a payout Stripe makes could pay it twice (failed here, paid there) or
    // not at all: its status follows Stripe's. The owner may still cancel it until it is sent.
    if (step !== "cancel" && this.paidThroughStripe(destinationType)) {
      throw new CofferError("INVALID_TRANSITION", "this withdrawal is paid out through Stripe: its status follows Stripe's payout, not a processor's");
    }
    // The same for a chain payout Coffer sends itself: only its pipeline (and the operator routes) move it.
    if (step !== "cancel" && network && this.chainLimits?.paidOnChain(network, asset)) {
      throw new CofferError("INVALID_TRANSITION", `this withdrawal is paid on ${network} by Coffer itself: its status follows the chain, not a processor's (see /admin/payouts)`);
    }
    const at = now();
    const command: WalletCommand =
      step === "complete"
        ? { type: "withdrawal.complete", withdrawalId, journalId: newId(), at }
        : step === "process"
          ? { type: "withdrawal.process", withdrawalId, at }
          : { type: `withdrawal.${step}`, withdrawalId, ...(reason ? { reason } : {}), at };
    return this.withStoredFields(await this.send(walletId, caller, key, `withdrawal.${step}`, withdrawalId, { reason }, command), withdrawalId);
  }

  /**
   * A platform admin's word on a withdrawal transaction monitoring held (src/monitoring/): released,
   * it is `requested` again and continues as any other; rejected, it ends and its hold is released.
   * The admin's note stays with the monitoring hold: the withdrawal's owner sees only these reasons.
   */
  async decideHeldWithdrawal(caller: Caller, key: string, withdrawalId: string, decision: "release" | "reject"): Promise<Reply> {
    authorize(caller.principal, "withdrawal.review");
    const { walletId } = await this.withdrawalMeta(withdrawalId);
    const command: WalletCommand = { type: `withdrawal.${decision}`, withdrawalId, reason: decision === "release" ? "released after review" : "rejected after review", at: now() };
    return this.withStoredFields(await this.send(walletId, caller, key, `withdrawal.${decision}`, withdrawalId, {}, command), withdrawalId);
  }

  /**
   * A step's answer in the one shape of a withdrawal. The actor renders it from what the step
   * changed; where the money goes and when it was asked never change, and come from the row that
   * was committed with the answer (so a replay, stored without them, gets them too).
   */
  private async withStoredFields(reply: Reply, withdrawalId: string): Promise<Reply> {
    if (reply.status >= 300 || ("destination" in reply.body && "createdAt" in reply.body)) return reply;
    const [row] = await this.db`select destination, created_at from withdrawals where id = ${withdrawalId}`;
    if (!row) return reply;
    const stored = { destination: row.destination?.masked ?? { type: "unknown" }, createdAt: (row.created_at as Date).toISOString() };
    return { status: reply.status, body: fillIn(reply.body, stored, WITHDRAWAL_KEYS) };
  }

  async createTransfer(caller: Caller, key: string, input: z.infer<typeof CreateTransfer>): Promise<Reply> {
    if (input.fromWalletId === input.toWalletId) throw new CofferError("SAME_WALLET", "a transfer needs two different wallets");
    const from = await this.walletFor(caller, "transfer.create", input.fromWalletId);
    const to = await this.meta(input.toWalletId);
    // Only what never changes is checked before the actor (which replays a retried key): a wallet's
    // existence and asset. Whether the receiver is frozen or closed is for the receiver to say; if
    // it refuses, the saga voids the transfer and the money returns.
    if (from.asset !== to.asset) {
      // What another's wallet holds is not the caller's to learn (and wallet ids can be computed):
      // to a caller who may not read the target, a wallet in another asset answers exactly as a
      // missing one. Same-asset transfers to others' wallets stay open: that is paying someone.
      let mayReadTarget = true;
      try {
        authorize(caller.principal, "wallet.read", [to.ownerId], "WALLET_NOT_FOUND");
      } catch (error) {
        if (!(error instanceof CofferError)) throw error;
        mayReadTarget = false;
      }
      if (!mayReadTarget) throw new CofferError("WALLET_NOT_FOUND", "wallet not found");
      throw new CofferError("ASSET_MISMATCH", "the two wallets hold different assets");
    }
    const amount = this.amount(input.amount, from.asset);
    return this.send(input.fromWalletId, caller, key, "transfer.create", "", { ...input, amount }, {
      type: "transfer.reserve",
      transferId: newId(),
      journalId: newId(),
      toWalletId: input.toWalletId,
      amount,
      at: now(),
    });
  }

  /** Internal steps (the transfer saga) use their own scope, keyed by transfer id and step. */
  system(walletId: string, key: string, command: WalletCommand): Promise<Reply> {
    return this.router.send({ kind: "wallet", id: walletId }, { command, idempotency: { scope: "system", key, fingerprint: key }, principal: SYSTEM_CLAIM });
  }

  private send(walletId: string, caller: Caller, key: string, operation: string, target: string, normalized: unknown, command: WalletCommand): Promise<Reply> {
    const envelope: Envelope = { command, idempotency: claimOf(this.vault, caller, key, operation, target, normalized), principal: claimOfPrincipal(caller.principal) };
    return this.router.send({ kind: "wallet", id: walletId }, envelope);
  }

  private amount(text: string, asset: Asset): bigint {
    return amountIn(text, asset, this.maxAmountMajor);
  }

  /** The wallet, once the caller is allowed to do `action` to it (a user sees others' as not found). */
  private async walletFor(caller: Caller, action: Action, walletId: string): Promise<WalletMeta> {
    const wallet = await this.meta(walletId);
    authorize(caller.principal, action, [wallet.ownerId], "WALLET_NOT_FOUND");
    return wallet;
  }

  async meta(walletId: string): Promise<WalletMeta> {
    const cached = this.wallets.get(walletId);
    if (cached) return cached;
    const [row] = await this.db`select asset, owner_id from wallets where id = ${walletId}`;
    if (!row) throw new CofferError("WALLET_NOT_FOUND", "wallet not found");
    const meta = { asset: row.asset as Asset, ownerId: row.owner_id as string };
    this.wallets.set(walletId, meta);
    return meta;
  }

  private async withdrawalMeta(withdrawalId: string): Promise<WithdrawalMeta> {
    const cached = this.withdrawalMetas.get(withdrawalId);
    if (cached) return cached;
    const [row] = await this.db`select wallet_id, asset, destination->'masked'->>'type' as destination_type, destination->'masked'->>'network' as network
      from withdrawals where id = ${withdrawalId}`;
    if (!row) throw new CofferError("WITHDRAWAL_NOT_FOUND", "withdrawal not found");
    const meta = {
      walletId: row.wallet_id as string,
      destinationType: String(row.destination_type ?? "unknown"),
      asset: row.asset as string,
      network: (row.network as string | null) ?? undefined,
    };
    this.withdrawalMetas.set(withdrawalId, meta);
    return meta;
  }
}

const WITHDRAWAL_KEYS = Object.keys(WithdrawalView.shape);

function now(): string {
  return new Date().toISOString();
}

/** The caller's idempotency claim for an operation: its key, and a keyed hash of what it asked. */
export function claimOf(vault: Vault, caller: Caller, key: string, operation: string, target: string, normalized: unknown): Idempotency {
  return { scope: caller.scope, key, fingerprint: fingerprint((t) => vault.mac(t), operation, target, normalized) };
}

/**
 * Refuses (400 UNSUPPORTED_NETWORK, naming the field) a payout of `asset` to where it cannot travel:
 * fiat to a chain, a coin to a bank, or a coin to a network that does not carry it (lib/networks.ts).
 */
export function payableTo(asset: Asset, destination: { type: string; network?: string }): void {
  const mismatch = payoutMismatch(asset, destination);
  if (mismatch) throw new FieldError(mismatch.field, mismatch.reason, "UNSUPPORTED_NETWORK");
}

/** What a crypto address is checked against besides itself: the node's clock (Lightning invoices expire) and LIGHTNING_NETWORK. */
export interface AddressPolicy {
  now: () => Date;
  lightningNetwork: LightningNetwork;
}

export const DEFAULT_ADDRESS_POLICY: AddressPolicy = { now: () => new Date(), lightningNetwork: "bitcoin" };

/**
 * Refuses (400 INVALID_ADDRESS at `destination.address`) a crypto address or invoice its network
 * would refuse (lib/addresses/), before anything is held. The detail names the network and the
 * rule, never the address. Run after `payableTo`, so the asset is one the network carries.
 *
 * Every rule but one gives the same answer whenever it is asked. An invoice's expiry does not: a
 * retry of a withdrawal that was accepted, under the same key after its invoice expired, must get
 * its first answer, so an expired invoice is refused only when the key has not been used yet (the
 * actor replays what it answered the first time; a different request under it is a conflict there).
 */
export async function payableAddress(
  db: Db,
  policy: AddressPolicy,
  caller: Caller,
  key: string,
  asset: Asset,
  amountMinor: bigint,
  destination: { type: string; network?: string; address?: string },
): Promise<void> {
  if (destination.type !== "crypto" || destination.network === undefined || destination.address === undefined) return;
  const network = destination.network as Parameters<typeof validateAddress>[0];
  const check = validateAddress(network, destination.address, { asset, amountMinor, now: policy.now(), lightningNetwork: policy.lightningNetwork });
  if (check.ok) return;
  if (check.rule === "expired") {
    const [used] = await db`select 1 from idempotency_keys where scope = ${caller.scope} and key = ${key}`;
    if (used) return;
  }
  if (check.rule === "asset") throw new FieldError("destination.network", `${network} does not carry ${asset}`, "UNSUPPORTED_NETWORK");
  const what = network === "lightning" ? "a valid lightning invoice" : `a valid ${network} address`;
  throw new FieldError("destination.address", `not ${what}: ${ADDRESS_RULES[check.rule]} (rule: ${check.rule})`, "INVALID_ADDRESS");
}

/**
 * A decimal amount in the asset's smallest unit, positive and under the configured maximum; else
 * 400 naming `field` (relative to the operation's input: `execute` says where it came from).
 */
export function amountIn(text: string, asset: Asset, maxAmountMajor: bigint, field = "amount"): bigint {
  const parsed = parseAmount(text, asset, maxMinorFor(maxAmountMajor, asset));
  if (!parsed.ok) throw new FieldError(field, parsed.reason);
  return parsed.minor;
}
