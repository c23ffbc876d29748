import type { Reply } from "../../actors/envelope";
import type { Router } from "../../actors/router";
import { defined } from "../../machines/chama.context";
import type { ChamaCommand, ChamaRules } from "../../machines/chama.events";
import type { Db } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import type { Asset } from "../../lib/assets";
import type { Vault } from "../security/encryption";
import { authorize, type Action } from "../../lib/policy";
import { claimOf as claimOfPrincipal, memberIdOf as memberIdOfPrincipal, SYSTEM_CLAIM } from "../../lib/principal";
import { LruCache } from "../../lib/lru";
import { formatAmount } from "../../lib/money";
import type { z } from "zod";
import { idFromKey, newId } from "./ids";
import { FieldError } from "./input";
import { amountIn, claimOf, payableAddress, payableTo, type AddressPolicy, type Caller } from "./wallet-service";
import type { LightningNetwork } from "../../lib/addresses";
import { MemberId, type AddMember, type ChamaDeposit, type ChangeRules, type CreateChama, type CreateContribution, type RequestChamaWithdrawal } from "./schemas";
import { fillIn, maskDestination } from "./views";
import { ChamaWithdrawalView } from "./outputs";

/** What never changes about a chama withdrawal, and every field of its one shape. */
const CHAMA_WITHDRAWAL_STORED = ["destination", "expiresAt", "createdAt"];
const CHAMA_WITHDRAWAL_KEYS = Object.keys(ChamaWithdrawalView.shape);

/** Steps on a chama withdrawal that callers ask for by name (review has its own call). */
export type RequestedChamaStep = "park" | "continue" | "cancel" | "complete" | "fail";

/**
 * Every chama operation, independent of transport. Like wallet operations: inputs are already
 * shape-checked; here the caller is checked against the policy, amounts get the chama's scale,
 * and a command with fresh ids, the time and WHO IS ACTING (always the caller's own subject) goes
 * to the chama's actor. Whether that member may do it (admin? requester? member at all?) is the
 * chama machine's decision, made in the actor against the chama's current state.
 */
export class ChamaService {
  private readonly assets = new LruCache<string, Asset>(10_000);
  /** What crypto addresses are checked against: this service's clock (invoices expire) and the Lightning network. */
  private readonly addresses: AddressPolicy;

  constructor(
    private readonly db: Db,
    private readonly router: Router,
    private readonly maxAmountMajor: bigint,
    private readonly vault: Vault,
    /** The node's clock: every command's `at`. Tests move it to reach expiry without sleeping. */
    private readonly clock: () => Date = () => new Date(),
    /** The network Lightning invoices must be for (LIGHTNING_NETWORK). */
    lightningNetwork: LightningNetwork = "bitcoin",
  ) {
    this.addresses = { now: () => this.clock(), lightningNetwork };
  }

  create(caller: Caller, key: string, input: z.infer<typeof CreateChama>): Promise<Reply> {
    authorize(caller.principal, "chama.create");
    const admin = input.adminId ?? memberIdOf(caller);
    if (caller.principal.role === "user" && admin !== memberIdOf(caller)) throw new CofferError("FORBIDDEN", "users create chamas with themselves as the admin");
    if (!MemberId.safeParse(admin).success) throw new FieldError("adminId", "name the chama's first admin: a platform credential is not a member");
    const chamaId = idFromKey("chama", caller.scope, key);
    return this.send(chamaId, caller, key, "chama.create", "", input, { type: "chama.open", chamaId, name: input.name, asset: input.asset, createdBy: admin, at: this.now() });
  }

  async setStatus(caller: Caller, key: string, chamaId: string, action: "freeze" | "unfreeze" | "close"): Promise<Reply> {
    await this.chamaFor(caller, `chama.${action}`, chamaId);
    return this.send(chamaId, caller, key, `chama.${action}`, chamaId, {}, { type: `chama.${action}`, by: memberIdOf(caller), at: this.now() });
  }

  async invite(caller: Caller, key: string, chamaId: string, input: z.infer<typeof AddMember>): Promise<Reply> {
    await this.chamaFor(caller, "chama.invite", chamaId);
    return this.send(chamaId, caller, key, "chama.invite", chamaId, input, { type: "chama.member.invite", ...input, by: memberIdOf(caller), at: this.now() });
  }

  /** The caller accepts their own invitation. */
  async accept(caller: Caller, key: string, chamaId: string): Promise<Reply> {
    await this.chamaFor(caller, "chama.accept", chamaId);
    return this.send(chamaId, caller, key, "chama.accept", chamaId, {}, { type: "chama.member.accept", memberId: memberIdOf(caller), at: this.now() });
  }

  async addMember(caller: Caller, key: string, chamaId: string, input: z.infer<typeof AddMember>): Promise<Reply> {
    await this.chamaFor(caller, "chama.member.add", chamaId);
    return this.send(chamaId, caller, key, "chama.add", chamaId, input, { type: "chama.member.add", ...input, by: memberIdOf(caller), at: this.now() });
  }

  async removeMember(caller: Caller, key: string, chamaId: string, memberId: string, reason?: string): Promise<Reply> {
    await this.chamaFor(caller, "chama.member.remove", chamaId);
    return this.send(chamaId, caller, key, "chama.remove", `${chamaId}/${memberId}`, { reason }, {
      type: "chama.member.remove",
      memberId,
      by: memberIdOf(caller),
      ...(reason ? { reason } : {}),
      at: this.now(),
    });
  }

  async changeRole(caller: Caller, key: string, chamaId: string, memberId: string, role: "admin" | "member"): Promise<Reply> {
    await this.chamaFor(caller, "chama.member.role", chamaId);
    return this.send(chamaId, caller, key, "chama.role", `${chamaId}/${memberId}`, { role }, { type: "chama.member.role", memberId, role, by: memberIdOf(caller), at: this.now() });
  }

  async changeRules(caller: Caller, key: string, chamaId: string, input: z.infer<typeof ChangeRules>): Promise<Reply> {
    const asset = await this.chamaFor(caller, "chama.rules.change", chamaId);
    const money = (name: "maxPerWithdrawal" | "maxPerDay") => {
      const given = input[name];
      return given === undefined ? {} : { [name]: given === null ? null : amountIn(given, asset, this.maxAmountMajor, name) };
    };
    const rules: Partial<ChamaRules> = {
      ...defined({
        approvalsRequired: input.approvalsRequired,
        rejectionsToReject: input.rejectionsToReject,
        maxWithdrawalsPerWindow: input.maxWithdrawalsPerWindow,
        windowMs: input.windowMs,
        requestLifetimeMs: input.requestLifetimeMs,
      }),
      ...money("maxPerWithdrawal"),
      ...money("maxPerDay"),
    };
    return this.send(chamaId, caller, key, "chama.rules", chamaId, rules, { type: "chama.rules.change", rules, by: memberIdOf(caller), at: this.now() });
  }

  /** Money in from outside, attributed to a member (a processor's or an admin's call, like wallet credits). */
  async deposit(caller: Caller, key: string, chamaId: string, input: z.infer<typeof ChamaDeposit>): Promise<Reply> {
    const asset = await this.chamaFor(caller, "chama.deposit", chamaId);
    const amount = amountIn(input.amount, asset, this.maxAmountMajor);
    return this.send(chamaId, caller, key, "chama.deposit", chamaId, { ...input, amount }, {
      type: "chama.deposit",
      journalId: newId(),
      memberId: input.memberId,
      amount,
      ...(input.reference ? { reference: input.reference } : {}),
      via: memberIdOf(caller),
      at: this.now(),
    });
  }

  async requestWithdrawal(caller: Caller, key: string, chamaId: string, input: z.infer<typeof RequestChamaWithdrawal>): Promise<Reply> {
    const asset = await this.chamaFor(caller, "chama.withdrawal.request", chamaId);
    const amount = amountIn(input.amount, asset, this.maxAmountMajor);
    const destination = input.destination;
    // Into a wallet: one of the requester's own, in the chama's asset (what never changes about a
    // wallet, so a retried key still reaches the actor's replay). Elsewhere: where the asset can go.
    const toWalletId = destination.type === "wallet" ? await this.requestersWallet(caller, destination.walletId, asset) : undefined;
    if (destination.type !== "wallet") {
      payableTo(asset, destination);
      await payableAddress(this.db, this.addresses, caller, key, asset, amount, destination);
    }
    const withdrawalId = newId();
    return this.send(chamaId, caller, key, "chama.withdrawal.request", chamaId, { amount, destination }, {
      type: "chama.withdrawal.request",
      withdrawalId,
      memberId: memberIdOf(caller),
      amount,
      // Sealed here, bound to the withdrawal's id: past this line only the masked form is readable.
      // A wallet of the requester's own is no secret from them or the chama: it is shown whole.
      destination: {
        masked: destination.type === "wallet" ? { type: "wallet", walletId: destination.walletId } : maskDestination(destination, formatAmount(amount, asset)),
        sealed: this.vault.seal(destination, withdrawalId),
      },
      ...(toWalletId ? { toWalletId } : {}),
      at: this.now(),
    });
  }

  /**
   * A member funds the chama from their own wallet: a transfer whose receiver is the chama. The
   * wallet reserves the money at once (refusing what it does not have); the transfer saga then asks
   * the chama to take it, credited to the wallet's owner, and settles, or voids it (the money back)
   * if the chama refuses (frozen, closed, the owner no longer a member). Whoever may move the
   * wallet's money may contribute it: its owner (for a chama they are part of), or a platform
   * credential with transfers:write.
   */
  async contribute(caller: Caller, key: string, chamaId: string, input: z.infer<typeof CreateContribution>): Promise<Reply> {
    const asset = await this.chamaFor(caller, "chama.contribute", chamaId);
    const [wallet] = await this.db`select asset, owner_id from wallets where id = ${input.fromWalletId}`;
    if (!wallet) throw new CofferError("WALLET_NOT_FOUND", "wallet not found");
    authorize(caller.principal, "chama.contribute", [wallet.owner_id], "WALLET_NOT_FOUND");
    if (wallet.asset !== asset) throw new CofferError("ASSET_MISMATCH", "the wallet holds another asset than the chama");
    const amount = amountIn(input.amount, asset, this.maxAmountMajor);
    return this.router.send(
      { kind: "wallet", id: input.fromWalletId },
      {
        command: { type: "transfer.reserve", transferId: newId(), journalId: newId(), toChamaId: chamaId, amount, at: this.now() },
        idempotency: claimOf(this.vault, caller, key, "chama.contribute", chamaId, { fromWalletId: input.fromWalletId, amount }),
        principal: claimOfPrincipal(caller.principal),
      },
    );
  }

  /** The requester's own wallet in the chama's asset; another's answers as a missing one. */
  private async requestersWallet(caller: Caller, walletId: string, asset: Asset): Promise<string> {
    const [wallet] = await this.db`select asset, owner_id from wallets where id = ${walletId}`;
    if (!wallet || wallet.owner_id !== memberIdOf(caller)) throw new CofferError("WALLET_NOT_FOUND", "wallet not found: a chama pays into one of the requester's own wallets");
    if (wallet.asset !== asset) throw new CofferError("ASSET_MISMATCH", "the wallet holds another asset than the chama");
    return walletId;
  }

  async review(caller: Caller, key: string, chamaId: string, withdrawalId: string, decision: "approve" | "reject", note?: string): Promise<Reply> {
    await this.chamaFor(caller, `chama.withdrawal.${decision}`, chamaId);
    const reply = await this.send(chamaId, caller, key, `chama.withdrawal.${decision}`, withdrawalId, { note }, {
      type: "chama.withdrawal.review",
      withdrawalId,
      reviewerId: memberIdOf(caller),
      decision,
      ...(note ? { note } : {}),
      at: this.now(),
    });
    return this.withStoredFields(reply, chamaId, withdrawalId);
  }

  async step(caller: Caller, key: string, chamaId: string, withdrawalId: string, step: RequestedChamaStep, text?: string): Promise<Reply> {
    await this.chamaFor(caller, `chama.withdrawal.${step}`, chamaId);
    const at = this.now();
    const by = memberIdOf(caller);
    const command: ChamaCommand =
      step === "complete"
        ? { type: "chama.withdrawal.complete", withdrawalId, journalId: newId(), via: by, at }
        : step === "fail"
          ? { type: "chama.withdrawal.fail", withdrawalId, ...(text ? { reason: text } : {}), via: by, at }
          : step === "park"
            ? { type: "chama.withdrawal.park", withdrawalId, by, ...(text ? { note: text } : {}), at }
            : step === "cancel"
              ? { type: "chama.withdrawal.cancel", withdrawalId, by, ...(text ? { reason: text } : {}), at }
              : // A withdrawal into a wallet posts its money out when continued: its journal, ready.
                { type: "chama.withdrawal.continue", withdrawalId, by, journalId: newId(), at };
    return this.withStoredFields(await this.send(chamaId, caller, key, `chama.withdrawal.${step}`, withdrawalId, { text }, command), chamaId, withdrawalId);
  }

  /**
   * A platform admin's word on a chama withdrawal transaction monitoring held (src/monitoring/):
   * released, it waits in manual review for the chama's own admins; rejected, it ends. The admin
   * acts as themselves (`admin#<sub>`), never as a member.
   */
  async decideHeldWithdrawal(caller: Caller, key: string, chamaId: string, withdrawalId: string, decision: "release" | "reject", note?: string): Promise<Reply> {
    authorize(caller.principal, "withdrawal.review");
    await this.assetOf(chamaId);
    const reply = await this.send(chamaId, caller, key, `chama.withdrawal.platform.${decision}`, withdrawalId, { note }, {
      type: "chama.withdrawal.release",
      withdrawalId,
      by: memberIdOf(caller),
      decision,
      ...(note ? { note } : {}),
      at: this.now(),
    });
    return this.withStoredFields(reply, chamaId, withdrawalId);
  }

  /**
   * An answer about a withdrawal in its one shape. The actor renders what it still holds; a
   * withdrawal the step ended has left its memory, and where the money went, when it was asked and
   * when it would have expired come from its row, committed with the answer (replays get them too).
   */
  private async withStoredFields(reply: Reply, chamaId: string, withdrawalId: string): Promise<Reply> {
    if (reply.status >= 300 || CHAMA_WITHDRAWAL_STORED.every((k) => k in reply.body)) return reply;
    const [row] = await this.db`select destination, expires_at, created_at from chama_withdrawals where id = ${withdrawalId} and chama_id = ${chamaId}`;
    if (!row) return reply;
    const stored = {
      destination: row.destination?.masked ?? { type: "unknown" },
      expiresAt: (row.expires_at as Date).toISOString(),
      createdAt: (row.created_at as Date).toISOString(),
    };
    return { status: reply.status, body: fillIn(reply.body, stored, CHAMA_WITHDRAWAL_KEYS) };
  }

  /** Platform steps (the expiry worker) use their own scope, keyed by what they do. */
  system(chamaId: string, key: string, command: ChamaCommand): Promise<Reply> {
    return this.router.send({ kind: "chama", id: chamaId }, { kind: "chama", command, idempotency: { scope: "system", key, fingerprint: key }, principal: SYSTEM_CLAIM });
  }

  now(): string {
    return this.clock().toISOString();
  }

  private send(chamaId: string, caller: Caller, key: string, operation: string, target: string, normalized: unknown, command: ChamaCommand): Promise<Reply> {
    return this.router.send({ kind: "chama", id: chamaId }, {
      kind: "chama",
      command,
      idempotency: claimOf(this.vault, caller, key, operation, target, normalized),
      principal: claimOfPrincipal(caller.principal),
    });
  }

  /**
   * The chama's asset, once the caller may do `action` to it. A user who is not a member, a former
   * member or invited (never part of it, or only invited and then revoked) sees it as not found,
   * exactly as a stranger does; an invitee gets through, to accept. Someone revoked never had a
   * command accepted (accepting makes a member, and leaving a member makes a former one), so this
   * check can only turn a retried refusal into not found, never a stored success into anything else.
   */
  private async chamaFor(caller: Caller, action: Action, chamaId: string): Promise<Asset> {
    const asset = await this.assetOf(chamaId);
    const p = caller.principal;
    const involved = p.role === "user" ? await this.db`select 1 from chama_members where chama_id = ${chamaId} and member_id = ${p.sub} and status <> 'revoked'` : [];
    authorize(p, action, p.role === "user" && involved.length ? [p.sub] : ["(nobody)"], "CHAMA_NOT_FOUND");
    return asset;
  }

  private async assetOf(chamaId: string): Promise<Asset> {
    const cached = this.assets.get(chamaId);
    if (cached) return cached;
    const [row] = await this.db`select asset from chamas where id = ${chamaId}`;
    if (!row) throw new CofferError("CHAMA_NOT_FOUND", "chama not found");
    this.assets.set(chamaId, row.asset as Asset);
    return row.asset as Asset;
  }
}

/** Who a caller is inside a chama (see memberIdOf in lib/principal.ts). */
export function memberIdOf(caller: Caller): string {
  return memberIdOfPrincipal(caller.principal);
}
