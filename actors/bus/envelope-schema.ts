import { z } from "zod";
import type { ChamaCommandType } from "../../machines/chama.events";
import type { DepositCommandType } from "../../machines/deposit.events";
import type { WalletCommandType } from "../../machines/wallet.events";
import { ASSETS } from "../../lib/assets";
import { PERMISSIONS, ROLES } from "../../lib/principal";
import type { Envelope } from "../envelope";

/**
 * What a node accepts from the bus, checked field by field before any actor sees it: one schema per
 * command of each machine (the records below must name every command type, or this file does not
 * compile; a test checks them against the machines' own event lists), ids in their formats, money a
 * positive bigint below what numeric(78,0) can hold (the configured maximum is the machine's own
 * check), an idempotency claim on every command, and the principal the edge authenticated.
 */
const text = (max: number) => z.string().min(1).max(max).regex(/^[^\p{Cc}\p{Cs}]*$/u);
const token = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9._:@\-]+$/);
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
/** A member id, or a platform credential acting in a chama (`<role>#<subject>`). */
const actorId = z.union([token(128), z.string().max(300).regex(/^(admin|service|auditor)#[^\p{Cc}\p{Cs}]{1,256}$/u)]);
const at = z.iso.datetime({ offset: true });
const asset = z.enum(ASSETS as [string, ...string[]]);
/** Larger than any configured maximum could allow, smaller than numeric(78,0). */
export const BUS_AMOUNT_CEILING = 10n ** 60n;
const amount = z.bigint().positive().max(BUS_AMOUNT_CEILING);
const reason = text(500).optional();
const b64 = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9+/=_-]+$/);
const sealed = z.strictObject({
  masked: z.record(token(32), z.string().max(256)).refine((m) => Object.keys(m).length <= 8),
  sealed: z.strictObject({ kid: token(32), iv: b64(64), ct: b64(4096), tag: b64(64) }),
});
/** An object id Stripe made (`pi_…`, `re_…`, `du_…`). */
const stripeId = token(255);
const cmd = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) => z.strictObject({ type: z.literal(type), at, ...shape });
/** Exactly one end of a transfer is named: a wallet or a chama. */
const oneOf = (a: string, b: string) => [(c: Record<string, unknown>) => (c[a] === undefined) !== (c[b] === undefined), `name exactly one of ${a} and ${b}`] as const;

const WALLET_COMMANDS = {
  "wallet.open": cmd("wallet.open", { walletId: uuid, ownerId: token(128), asset }),
  "wallet.credit": cmd("wallet.credit", { journalId: uuid, amount, reference: token(128).optional() }),
  "wallet.payment": cmd("wallet.payment", { journalId: uuid, amount, reference: token(128).optional() }),
  "wallet.freeze": cmd("wallet.freeze", {}),
  "wallet.unfreeze": cmd("wallet.unfreeze", {}),
  "wallet.close": cmd("wallet.close", {}),
  "withdrawal.request": cmd("withdrawal.request", { withdrawalId: uuid, amount, destination: sealed }),
  "withdrawal.process": cmd("withdrawal.process", { withdrawalId: uuid }),
  "withdrawal.complete": cmd("withdrawal.complete", { withdrawalId: uuid, journalId: uuid }),
  "withdrawal.fail": cmd("withdrawal.fail", { withdrawalId: uuid, reason }),
  "withdrawal.cancel": cmd("withdrawal.cancel", { withdrawalId: uuid, reason }),
  "withdrawal.payout.send": cmd("withdrawal.payout.send", { withdrawalId: uuid }),
  "withdrawal.payout.complete": cmd("withdrawal.payout.complete", { withdrawalId: uuid, journalId: uuid, feeMinor: amount.optional() }),
  "withdrawal.payout.fail": cmd("withdrawal.payout.fail", { withdrawalId: uuid, reason }),
  "withdrawal.payout.return": cmd("withdrawal.payout.return", { withdrawalId: uuid, journalId: uuid, amount, reason }),
  "withdrawal.hold": cmd("withdrawal.hold", { withdrawalId: uuid, reason }),
  "withdrawal.release": cmd("withdrawal.release", { withdrawalId: uuid, reason }),
  "withdrawal.reject": cmd("withdrawal.reject", { withdrawalId: uuid, reason }),
  "transfer.reserve": cmd("transfer.reserve", { transferId: uuid, journalId: uuid, toWalletId: uuid.optional(), toChamaId: uuid.optional(), amount }).refine(
    ...oneOf("toWalletId", "toChamaId"),
  ),
  "transfer.credit": cmd("transfer.credit", {
    transferId: uuid,
    journalId: uuid,
    fromWalletId: uuid.optional(),
    fromChamaId: uuid.optional(),
    toMemberId: token(128).optional(),
    asset,
    amount,
  })
    .refine(...oneOf("fromWalletId", "fromChamaId"))
    .refine((c) => (c.fromChamaId === undefined) === (c.toMemberId === undefined), "toMemberId goes with fromChamaId, and only with it"),
  "transfer.settle": cmd("transfer.settle", { transferId: uuid }),
  "transfer.void": cmd("transfer.void", { transferId: uuid, journalId: uuid, reason: text(500) }),
  "deposit.credit": cmd("deposit.credit", { depositId: uuid, journalId: uuid, amount }),
  "deposit.refund.debit": cmd("deposit.refund.debit", { depositId: uuid, refundId: uuid, journalId: uuid, amount, force: z.boolean() }),
  "deposit.refund.return": cmd("deposit.refund.return", { depositId: uuid, refundId: uuid, journalId: uuid, amount }),
  "deposit.dispute.debit": cmd("deposit.dispute.debit", { depositId: uuid, disputeId: stripeId, journalId: uuid, amount }),
  "deposit.dispute.return": cmd("deposit.dispute.return", { depositId: uuid, disputeId: stripeId, journalId: uuid, amount }),
} satisfies Record<WalletCommandType, z.ZodType>;

/** Card deposits (machines/deposit.machine.ts). */
const depositOpen = { depositId: uuid, walletId: uuid, ownerId: token(128), asset, amount, paymentIntentId: stripeId };
const DEPOSIT_COMMANDS = {
  "deposit.open": cmd("deposit.open", depositOpen),
  "deposit.adopt": cmd("deposit.adopt", depositOpen),
  "deposit.payment": cmd("deposit.payment", { status: z.enum(["succeeded", "failed", "canceled"]), amountReceived: z.bigint().min(0n).max(BUS_AMOUNT_CEILING), currency: z.string().regex(/^[A-Z]{3}$/), reason }),
  "deposit.refund.request": cmd("deposit.refund.request", { refundId: uuid, amount: amount.optional() }),
  "deposit.refund.cancel": cmd("deposit.refund.cancel", { refundId: uuid, reason: text(500) }),
  "deposit.refund.report": cmd("deposit.refund.report", { refundId: uuid, stripeRefundId: stripeId.optional(), amount, status: z.enum(["pending", "succeeded", "failed", "canceled"]), reason }),
  "deposit.dispute": cmd("deposit.dispute", { disputeId: stripeId, amount, status: z.enum(["open", "won", "lost"]), reason }),
} satisfies Record<DepositCommandType, z.ZodType>;

const role = z.enum(["admin", "member"]);
const money = amount.nullable().optional();
const rules = z
  .strictObject({
    approvalsRequired: z.number().int().min(1).max(500).optional(),
    rejectionsToReject: z.number().int().min(1).max(500).optional(),
    maxPerWithdrawal: money,
    maxPerDay: money,
    maxWithdrawalsPerWindow: z.number().int().min(1).max(1_000).nullable().optional(),
    windowMs: z.number().int().min(60_000).max(31 * 86_400_000).optional(),
    requestLifetimeMs: z.number().int().min(60_000).max(90 * 86_400_000).optional(),
  });

const CHAMA_COMMANDS = {
  "chama.open": cmd("chama.open", { chamaId: uuid, name: text(100), asset, createdBy: token(128) }),
  "chama.freeze": cmd("chama.freeze", { by: actorId }),
  "chama.unfreeze": cmd("chama.unfreeze", { by: actorId }),
  "chama.close": cmd("chama.close", { by: actorId }),
  "chama.member.invite": cmd("chama.member.invite", { memberId: token(128), role, by: actorId }),
  "chama.member.accept": cmd("chama.member.accept", { memberId: token(128) }),
  "chama.member.add": cmd("chama.member.add", { memberId: token(128), role, by: actorId }),
  "chama.member.remove": cmd("chama.member.remove", { memberId: token(128), by: actorId, reason }),
  "chama.member.role": cmd("chama.member.role", { memberId: token(128), role, by: actorId }),
  "chama.rules.change": cmd("chama.rules.change", { rules, by: actorId }),
  "chama.deposit": cmd("chama.deposit", { journalId: uuid, memberId: token(128), amount, reference: token(128).optional(), via: actorId.optional() }),
  "chama.withdrawal.request": cmd("chama.withdrawal.request", { withdrawalId: uuid, memberId: token(128), amount, destination: sealed, toWalletId: uuid.optional() }),
  "chama.withdrawal.review": cmd("chama.withdrawal.review", { withdrawalId: uuid, reviewerId: actorId, decision: z.enum(["approve", "reject"]), note: reason }),
  "chama.withdrawal.park": cmd("chama.withdrawal.park", { withdrawalId: uuid, by: actorId, note: reason }),
  "chama.withdrawal.continue": cmd("chama.withdrawal.continue", { withdrawalId: uuid, by: actorId, journalId: uuid.optional() }),
  "chama.withdrawal.complete": cmd("chama.withdrawal.complete", { withdrawalId: uuid, journalId: uuid, via: actorId.optional() }),
  "chama.withdrawal.fail": cmd("chama.withdrawal.fail", { withdrawalId: uuid, reason, via: actorId.optional() }),
  "chama.withdrawal.cancel": cmd("chama.withdrawal.cancel", { withdrawalId: uuid, by: actorId, reason }),
  "chama.withdrawal.expire": cmd("chama.withdrawal.expire", { withdrawalId: uuid }),
  "chama.withdrawal.hold": cmd("chama.withdrawal.hold", { withdrawalId: uuid, note: reason }),
  "chama.withdrawal.release": cmd("chama.withdrawal.release", { withdrawalId: uuid, by: actorId, decision: z.enum(["release", "reject"]), note: reason }),
  "chama.transfer.credit": cmd("chama.transfer.credit", { transferId: uuid, journalId: uuid, memberId: token(128), fromWalletId: uuid, amount }),
  "chama.withdrawal.settle": cmd("chama.withdrawal.settle", { withdrawalId: uuid }),
  "chama.withdrawal.void": cmd("chama.withdrawal.void", { withdrawalId: uuid, journalId: uuid, reason: text(500) }),
} satisfies Record<ChamaCommandType, z.ZodType>;

/** Every command type each machine takes, as the bus knows them (tests compare with the machines). */
export const BUS_COMMAND_TYPES = {
  wallet: Object.keys(WALLET_COMMANDS) as WalletCommandType[],
  chama: Object.keys(CHAMA_COMMANDS) as ChamaCommandType[],
  deposit: Object.keys(DEPOSIT_COMMANDS) as DepositCommandType[],
};

const union = (schemas: Record<string, z.ZodObject>) => z.discriminatedUnion("type", Object.values(schemas) as [z.ZodObject, ...z.ZodObject[]]);

const idempotency = z.strictObject({
  scope: z.string().min(1).max(400).regex(/^[^\p{Cc}\p{Cs}]*$/u),
  key: z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/),
  fingerprint: z.string().min(1).max(255),
});

const principal = z.strictObject({
  sub: text(256),
  role: z.enum([...ROLES, "system"]),
  permissions: z.array(z.enum(PERMISSIONS)).max(PERMISSIONS.length),
});

export const BusEnvelope = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("wallet"), command: union(WALLET_COMMANDS), idempotency, principal }),
  z.strictObject({ kind: z.literal("chama"), command: union(CHAMA_COMMANDS), idempotency, principal }),
  z.strictObject({ kind: z.literal("deposit"), command: union(DEPOSIT_COMMANDS), idempotency, principal }),
]);

/** The envelope as it arrived, checked; or the first problem found in it. */
export function parseEnvelope(value: unknown): { ok: true; envelope: Envelope } | { ok: false; problem: string } {
  const parsed = BusEnvelope.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, problem: `${issue.path.join(".")}: ${issue.message}`.slice(0, 200) };
  }
  return { ok: true, envelope: parsed.data as unknown as Envelope };
}
