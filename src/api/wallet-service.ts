import type { Envelope, Idempotency, Reply } from "../../actors/envelope";
import type { Router } from "../../actors/router";
import type { WalletCommand } from "../../machines/wallet.events";
import type { WithdrawalStep } from "../../machines/withdrawal.machine";
import type { Db } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import type { Asset } from "../../lib/assets";
import { maxMinorFor, parseAmount } from "../../lib/money";
import { payoutMismatch } from "../../lib/networks";
import { fingerprint, idFromKey, newId } from "./ids";
import { FieldError } from "./input";
import type { z } from "zod";
import type { CreateTransfer, CreateWallet, MoneyIn, RequestWithdrawal } from "./schemas";
import { LruCache } from "../../lib/lru";
import type { Vault } from "../security/encryption";
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
export class WalletService {
  private readonly wallets = new LruCache<string, WalletMeta>(100_000);
  private readonly withdrawalWallets = new LruCache<string, string>(100_000);

  constructor(
    private readonly db: Db,
    private readonly router: Router,
    private readonly maxAmountMajor: bigint,
    private readonly vault: Vault,
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
    const withdrawalId = newId();
    return this.send(walletId, caller, key, "withdrawal.request", walletId, { amount, destination: input.destination }, {
      type: "withdrawal.request",
      withdrawalId,
      amount,
      // Sealed here, bound to the withdrawal's id: past this line only the masked form is readable.
      destination: { masked: maskDestination(input.destination), sealed: this.vault.seal(input.destination, withdrawalId) },
      at: now(),
    });
  }

  async stepWithdrawal(caller: Caller, key: string, withdrawalId: string, step: WithdrawalStep, reason?: string): Promise<Reply> {
    const walletId = await this.walletOfWithdrawal(withdrawalId);
    const owner = (await this.meta(walletId)).ownerId;
    authorize(caller.principal, step === "cancel" ? "withdrawal.cancel" : "withdrawal.process", [owner], "WITHDRAWAL_NOT_FOUND");
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

  private async walletOfWithdrawal(withdrawalId: string): Promise<string> {
    const cached = this.withdrawalWallets.get(withdrawalId);
    if (cached) return cached;
    const [row] = await this.db`select wallet_id from withdrawals where id = ${withdrawalId}`;
    if (!row) throw new CofferError("WITHDRAWAL_NOT_FOUND", "withdrawal not found");
    this.withdrawalWallets.set(withdrawalId, row.wallet_id);
    return row.wallet_id;
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
 * Refuses (400 NETWORK_MISMATCH, naming the field) a payout of `asset` to where it cannot travel:
 * fiat to a chain, a coin to a bank, or a coin to a network that does not carry it (lib/networks.ts).
 */
export function payableTo(asset: Asset, destination: { type: string; network?: string }): void {
  const mismatch = payoutMismatch(asset, destination);
  if (mismatch) throw new FieldError(mismatch.field, mismatch.reason, "NETWORK_MISMATCH");
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
