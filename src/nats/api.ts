import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import type { Outcome } from "../../actors/envelope";
import { parseJson } from "../api/input";
import type { Caller, WalletService } from "../api/wallet-service";
import type { ChamaService, ChamaWithdrawalStep } from "../api/chama-service";
import { getChama, getChamaWithdrawal, getMember, listAudit, listChamaWithdrawals, listMembers } from "../api/chama-queries";
import { outcomeOf } from "../api/outcome";
import { getTransfer, getWallet, getWithdrawal, listTransactions } from "../api/queries";
import {
  AddMember,
  ChamaDeposit,
  ChamaStepBody,
  ChamaWithdrawalQuery,
  ChangeRole,
  CreateChama,
  CreateTransfer,
  CreateWallet,
  Cursor,
  MemberId,
  MoneyIn,
  RequestWithdrawal,
  ReviewBody,
  RULE_FIELDS,
  someRuleGiven,
  Uuid,
  WithdrawalStepBody,
} from "../api/schemas";
import type { Db } from "../../lib/db";
import { log, reason } from "../../lib/log";
import { CofferError } from "../../lib/errors";
import type { Authenticator } from "../security/authenticator";
import { scopeOf } from "../../lib/principal";
import { enforce, enforceCaller, type RateLimiter, type TierSettings, tiersFrom } from "../security/rate-limit";

/**
 * The request-reply API for other services: the same operations, schemas, idempotency rules, error
 * codes, authentication and rate limits as REST, on subjects `<prefix>.v1.<operation>`.
 *
 * Request: headers `Authorization: Bearer <token | cof_ API key>` (or `X-Api-Key`), and
 * `Idempotency-Key` for every operation that changes something; payload: a JSON object with the
 * REST body's fields plus the ids REST has in its path (`walletId`, `withdrawalId`, `transferId`).
 * Reply: `{"status": <HTTP-style status>, "body": <resource or RFC 9457 problem>}`.
 * Every node subscribes in one queue group, so each request is answered once, by any node.
 */
export interface NatsApiDeps {
  db: Db;
  ops: WalletService;
  chamas: ChamaService;
  authenticator: Authenticator;
  limiter: RateLimiter | undefined;
  limits: TierSettings;
}

interface Context {
  caller: Caller;
  key: string;
}

interface Handler {
  input: z.ZodType;
  /** Changes something: needs an Idempotency-Key. */
  mutates: boolean;
  /** Moves money out: the stricter money tier applies. */
  money: boolean;
  run(ctx: Context, input: any): Promise<Outcome>;
}

const MAX_PAYLOAD_BYTES = 64 * 1024;
const WalletRef = z.strictObject({ walletId: Uuid });
const StepInput = WithdrawalStepBody.unwrap().extend({ withdrawalId: Uuid });

export function handlers(deps: NatsApiDeps): Record<string, Handler> {
  const { ops, db, chamas } = deps;
  const mutation = (input: z.ZodType, run: Handler["run"], money = false): Handler => ({ input, mutates: true, money, run });
  const query = (input: z.ZodType, read: (ctx: Context, input: any) => Promise<Record<string, unknown>>): Handler => ({
    input,
    mutates: false,
    money: false,
    run: async (ctx, i) => ({ status: 200, body: await read(ctx, i) }),
  });
  const step = (s: "process" | "complete" | "fail" | "cancel") =>
    mutation(StepInput, (c, i) => ops.stepWithdrawal(c.caller, c.key, i.withdrawalId, s, i.reason));
  return {
    "wallets.create": mutation(CreateWallet, (c, i) => ops.createWallet(c.caller, c.key, i)),
    "wallets.get": query(WalletRef, (c, i) => getWallet(db, c.caller.principal, i.walletId)),
    "wallets.transactions": query(
      z.strictObject({ walletId: Uuid, limit: z.number().int().min(1).max(200).default(50), cursor: Cursor.optional() }),
      (c, i) => listTransactions(db, c.caller.principal, i.walletId, i.limit, i.cursor),
    ),
    "wallets.freeze": mutation(WalletRef, (c, i) => ops.setStatus(c.caller, c.key, i.walletId, "freeze")),
    "wallets.unfreeze": mutation(WalletRef, (c, i) => ops.setStatus(c.caller, c.key, i.walletId, "unfreeze")),
    "wallets.close": mutation(WalletRef, (c, i) => ops.setStatus(c.caller, c.key, i.walletId, "close")),
    "credits.create": mutation(MoneyIn.extend({ walletId: Uuid }), (c, { walletId, ...i }) => ops.credit(c.caller, c.key, walletId, i)),
    "payments.create": mutation(MoneyIn.extend({ walletId: Uuid }), (c, { walletId, ...i }) => ops.pay(c.caller, c.key, walletId, i), true),
    "withdrawals.create": mutation(RequestWithdrawal.extend({ walletId: Uuid }), (c, { walletId, ...i }) => ops.requestWithdrawal(c.caller, c.key, walletId, i), true),
    "withdrawals.get": query(z.strictObject({ withdrawalId: Uuid }), (c, i) => getWithdrawal(db, c.caller.principal, i.withdrawalId)),
    "withdrawals.process": step("process"),
    "withdrawals.complete": step("complete"),
    "withdrawals.fail": step("fail"),
    "withdrawals.cancel": step("cancel"),
    "transfers.create": mutation(CreateTransfer, (c, i) => ops.createTransfer(c.caller, c.key, i), true),
    "transfers.get": query(z.strictObject({ transferId: Uuid }), (c, i) => getTransfer(db, c.caller.principal, i.transferId)),
    ...chamaHandlers(db, chamas, mutation, query),
  };
}

/** Chamas: the REST routes of src/http/chamas.ts as `chamas.*` subjects; path ids go in the payload. */
function chamaHandlers(
  db: Db,
  chamas: ChamaService,
  mutation: (input: z.ZodType, run: Handler["run"], money?: boolean) => Handler,
  query: (input: z.ZodType, read: (ctx: Context, input: any) => Promise<Record<string, unknown>>) => Handler,
): Record<string, Handler> {
  const ref = z.strictObject({ chamaId: Uuid });
  const memberRef = z.strictObject({ chamaId: Uuid, memberId: MemberId });
  const withdrawalRef = { chamaId: Uuid, withdrawalId: Uuid };
  const status = (action: "freeze" | "unfreeze" | "close") => mutation(ref, (c, i) => chamas.setStatus(c.caller, c.key, i.chamaId, action));
  const review = (decision: "approve" | "reject") =>
    mutation(ReviewBody.unwrap().extend(withdrawalRef), (c, i) => chamas.review(c.caller, c.key, i.chamaId, i.withdrawalId, decision, i.note));
  const step = (name: ChamaWithdrawalStep, body: z.ZodObject, read: (i: any) => string | undefined = () => undefined, money = false) =>
    mutation(body.extend(withdrawalRef), (c, i) => chamas.step(c.caller, c.key, i.chamaId, i.withdrawalId, name, read(i)), money);
  return {
    "chamas.create": mutation(CreateChama, (c, i) => chamas.create(c.caller, c.key, i)),
    "chamas.get": query(ref, (c, i) => getChama(db, c.caller.principal, i.chamaId)),
    "chamas.freeze": status("freeze"),
    "chamas.unfreeze": status("unfreeze"),
    "chamas.close": status("close"),
    "chamas.invitations.create": mutation(AddMember.extend(ref.shape), (c, { chamaId, ...i }) => chamas.invite(c.caller, c.key, chamaId, i)),
    "chamas.invitations.accept": mutation(ref, (c, i) => chamas.accept(c.caller, c.key, i.chamaId)),
    "chamas.members.add": mutation(AddMember.extend(ref.shape), (c, { chamaId, ...i }) => chamas.addMember(c.caller, c.key, chamaId, i)),
    "chamas.members.list": query(ref, async (c, i) => ({ items: await listMembers(db, c.caller.principal, i.chamaId) })),
    "chamas.members.get": query(memberRef, (c, i) => getMember(db, c.caller.principal, i.chamaId, i.memberId)),
    "chamas.members.remove": mutation(ChamaStepBody.unwrap().extend(memberRef.shape), (c, i) =>
      chamas.removeMember(c.caller, c.key, i.chamaId, i.memberId, i.reason)),
    "chamas.members.role": mutation(memberRef.extend(ChangeRole.shape), (c, i) => chamas.changeRole(c.caller, c.key, i.chamaId, i.memberId, i.role)),
    "chamas.rules": mutation(z.strictObject({ ...RULE_FIELDS, ...ref.shape }).refine(someRuleGiven, "give at least one rule to change"), (c, { chamaId, ...i }) =>
      chamas.changeRules(c.caller, c.key, chamaId, i)),
    "chamas.deposits.create": mutation(ChamaDeposit.extend(ref.shape), (c, { chamaId, ...i }) => chamas.deposit(c.caller, c.key, chamaId, i)),
    "chamas.withdrawals.create": mutation(RequestWithdrawal.extend(ref.shape), (c, { chamaId, ...i }) => chamas.requestWithdrawal(c.caller, c.key, chamaId, i), true),
    "chamas.withdrawals.list": query(ChamaWithdrawalQuery.extend({ ...ref.shape, limit: z.number().int().min(1).max(200).default(50) }), (c, q) =>
      listChamaWithdrawals(db, c.caller.principal, q.chamaId, { status: q.status, pageSize: q.limit, cursor: q.cursor })),
    "chamas.withdrawals.get": query(z.strictObject(withdrawalRef), (c, i) => getChamaWithdrawal(db, c.caller.principal, i.chamaId, i.withdrawalId)),
    "chamas.withdrawals.approve": review("approve"),
    "chamas.withdrawals.reject": review("reject"),
    "chamas.withdrawals.park": step("park", ReviewBody.unwrap(), (i) => i.note),
    "chamas.withdrawals.continue": step("continue", z.strictObject({}), undefined, true),
    "chamas.withdrawals.cancel": step("cancel", ChamaStepBody.unwrap(), (i) => i.reason),
    "chamas.withdrawals.complete": step("complete", z.strictObject({})),
    "chamas.withdrawals.fail": step("fail", ChamaStepBody.unwrap(), (i) => i.reason),
    "chamas.audit": query(z.strictObject({ ...ref.shape, limit: z.number().int().min(1).max(200).default(50), cursor: Cursor.optional() }), (c, i) =>
      listAudit(db, c.caller.principal, i.chamaId, i.limit, i.cursor)),
  };
}

export function startNatsApi(nc: NatsConnection, prefix: string, deps: NatsApiDeps): Subscription {
  const table = handlers(deps);
  const tiers = tiersFrom(deps.limits);
  const root = `${prefix}.v1.`;
  return nc.subscribe(`${prefix}.v1.>`, {
    queue: `${prefix}-api`,
    // Nothing a caller publishes may throw out of here: a throw would take the node's reader down.
    callback: (error, msg) => {
      if (error) return;
      try {
        const name = msg.subject.slice(root.length);
        void answer(msg, Object.hasOwn(table, name) ? table[name] : undefined, deps, tiers)
          .then((outcome) => {
            if (msg.reply) msg.respond(JSON.stringify(outcome));
          })
          .catch(() => {
            // the connection is closing (shutdown): the caller will time out and retry with its key
          });
      } catch (e) {
        log("warn", "security: NATS API message dropped", { error: reason(e) });
      }
    },
  });
}

async function answer(msg: Msg, handler: Handler | undefined, deps: NatsApiDeps, tiers: ReturnType<typeof tiersFrom>): Promise<Outcome> {
  try {
    if (!handler) throw new CofferError("NOT_FOUND", "no such operation");
    if (msg.data.length > MAX_PAYLOAD_BYTES) throw new CofferError("PAYLOAD_TOO_LARGE", `payloads are limited to ${MAX_PAYLOAD_BYTES} bytes`);
    const principal = await deps.authenticator.principalFor({
      authorization: msg.headers?.get("Authorization") || undefined,
      apiKey: msg.headers?.get("X-Api-Key") || undefined,
    });
    const caller: Caller = { scope: scopeOf(principal), principal };
    if (deps.limiter) {
      await enforceCaller(deps.limiter, tiers, caller.scope, principal);
      if (handler.money) await enforce(deps.limiter, caller.scope, tiers.money);
    }
    const key = msg.headers?.get("Idempotency-Key") ?? "";
    if (handler.mutates && !key) throw new CofferError("IDEMPOTENCY_KEY_REQUIRED", "send an Idempotency-Key header with every change");
    if (key.length > 255 || !/^[\x21-\x7e]*$/.test(key)) throw new CofferError("VALIDATION_FAILED", "Idempotency-Key must be 1 to 255 printable ASCII characters");
    const input = parseJson(msg.string(), handler.input, { optional: true, where: "payload" });
    return await handler.run({ caller, key }, input);
  } catch (error) {
    return outcomeOf(error, { subject: msg.subject });
  }
}
