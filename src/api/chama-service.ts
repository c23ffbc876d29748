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
import type { z } from "zod";
import { idFromKey, newId } from "./ids";
import { amountIn, claimOf, type Caller } from "./wallet-service";
import { MemberId, type AddMember, type ChamaDeposit, type ChangeRules, type CreateChama, type RequestWithdrawal } from "./schemas";
import { maskDestination } from "./views";

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

  constructor(
    private readonly db: Db,
    private readonly router: Router,
    private readonly maxAmountMajor: bigint,
    private readonly vault: Vault,
    /** The node's clock: every command's `at`. Tests move it to reach expiry without sleeping. */
    private readonly clock: () => Date = () => new Date(),
  ) {}

  create(caller: Caller, key: string, input: z.infer<typeof CreateChama>): Promise<Reply> {
    authorize(caller.principal, "chama.create");
    const admin = input.adminId ?? memberIdOf(caller);
    if (caller.principal.role === "user" && admin !== memberIdOf(caller)) throw new CofferError("FORBIDDEN", "users create chamas with themselves as the admin");
    if (!MemberId.safeParse(admin).success) throw new CofferError("VALIDATION_FAILED", "name the chama's first admin in adminId: a platform credential is not a member");
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

  async requestWithdrawal(caller: Caller, key: string, chamaId: string, input: z.infer<typeof RequestWithdrawal>): Promise<Reply> {
    const asset = await this.chamaFor(caller, "chama.withdrawal.request", chamaId);
    const amount = amountIn(input.amount, asset, this.maxAmountMajor);
    const withdrawalId = newId();
    return this.send(chamaId, caller, key, "chama.withdrawal.request", chamaId, { amount, destination: input.destination }, {
      type: "chama.withdrawal.request",
      withdrawalId,
      memberId: memberIdOf(caller),
      amount,
      // Sealed here, bound to the withdrawal's id: past this line only the masked form is readable.
      destination: { masked: maskDestination(input.destination), sealed: this.vault.seal(input.destination, withdrawalId) },
      at: this.now(),
    });
  }

  async review(caller: Caller, key: string, chamaId: string, withdrawalId: string, decision: "approve" | "reject", note?: string): Promise<Reply> {
    await this.chamaFor(caller, `chama.withdrawal.${decision}`, chamaId);
    return this.send(chamaId, caller, key, `chama.withdrawal.${decision}`, withdrawalId, { note }, {
      type: "chama.withdrawal.review",
      withdrawalId,
      reviewerId: memberIdOf(caller),
      decision,
      ...(note ? { note } : {}),
      at: this.now(),
    });
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
              : { type: "chama.withdrawal.continue", withdrawalId, by, at };
    return this.send(chamaId, caller, key, `chama.withdrawal.${step}`, withdrawalId, { text }, command);
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
