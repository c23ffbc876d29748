import { isIP } from "node:net";
import { z } from "zod";
import { ASSETS } from "../../lib/assets";
import { PERMISSIONS } from "../../lib/principal";

/**
 * Request bodies, shared by every transport. Objects are strict (an unknown field is a 400, so a
 * typo never silently does something else) and every string has a ceiling.
 */
/** Free text: no control characters and no broken surrogates (Postgres could not store them). */
const text = (max: number) =>
  z.string().min(1).max(max).regex(/^[^\p{Cc}\p{Cs}]*$/u, "control characters are not allowed");
/** Ids and references: printable ASCII without spaces or quotes, so they are safe in logs and URLs. */
const token = (max: number) => text(max).regex(/^[A-Za-z0-9._:@\-]+$/, "use letters, digits and . _ : @ -");
/** Amounts stay strings here; they become bigint only once the asset (and so the scale) is known. */
export const AmountText = z.string().max(100);

export const CreateWallet = z.strictObject({
  ownerId: token(128),
  asset: z.enum(ASSETS as [string, ...string[]]),
});

export const MoneyIn = z.strictObject({
  amount: AmountText,
  reference: token(128).optional(),
});

export const Destination = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("bank"), account: text(64).regex(/^(?=.*[A-Za-z0-9])[A-Za-z0-9 \-]+$/, "letters, digits, spaces and dashes only") }),
  z.strictObject({ type: z.literal("crypto"), network: token(32), address: token(128) }),
]);

export const RequestWithdrawal = z.strictObject({
  amount: AmountText,
  destination: Destination,
});

export const WithdrawalStepBody = z.strictObject({ reason: text(500).optional() }).optional();

/** Ids are compared as text everywhere, so they are made lower case at the edge: one spelling per id. */
export const Uuid = z.uuid().transform((id) => id.toLowerCase());

export const CreateTransfer = z.strictObject({
  fromWalletId: Uuid,
  toWalletId: Uuid,
  amount: AmountText,
});


const BIGINT_MAX = 2n ** 63n - 1n;
/** A page cursor: the last posting id seen, a positive bigint. */
export const Cursor = z.string().refine((c) => /^[0-9]{1,19}$/.test(c) && BigInt(c) <= BIGINT_MAX, "use the nextCursor of the previous page");
export const ListQuery = z.strictObject({
  limit: z.string().regex(/^[0-9]{1,3}$/, "a whole number from 1 to 200").transform(Number).pipe(z.number().min(1).max(200)).default(50),
  cursor: Cursor.optional(),
});

export const EmptyBody = z.strictObject({}).optional();

/** A page size: a number over NATS, a query string over REST ("50"); 1 to 200, 50 when absent. */
export const PageLimit = z
  .union([z.number().int(), z.string().regex(/^[0-9]{1,3}$/, "a whole number from 1 to 200").transform(Number)])
  .pipe(z.number().min(1, "a whole number from 1 to 200").max(200, "a whole number from 1 to 200"))
  .default(50);

const Cidr = z.string().max(64).refine((c) => {
  const [ip, bits, ...rest] = c.split("/");
  const family = ip ? isIP(ip) : 0;
  return rest.length === 0 && family !== 0 && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)));
}, "an IPv4 or IPv6 address or CIDR block");

export const CreateApiKey = z.strictObject({
  name: text(100),
  subject: token(128),
  permissions: z.array(z.enum(PERMISSIONS)).min(1).max(PERMISSIONS.length),
  rateLimitPerMinute: z.number().int().min(1).max(1_000_000).optional(),
  ipAllowlist: z.array(Cidr).min(1).max(50).optional(),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});

export const RotateApiKey = z.strictObject({ overlapSeconds: z.number().int().min(0).max(7 * 24 * 3600).default(0) }).optional();

// Chamas. Member ids are the members' token subjects, so they follow the same rule as any id.
export const MemberId = token(128);
const ChamaRole = z.enum(["admin", "member"]);
const Note = text(500);

export const CreateChama = z.strictObject({
  name: text(100),
  asset: z.enum(ASSETS as [string, ...string[]]),
  /** The founding admin; a user may only name themselves (the default). */
  adminId: MemberId.optional(),
});

export const AddMember = z.strictObject({ memberId: MemberId, role: ChamaRole.default("member") });
export const ChangeRole = z.strictObject({ role: ChamaRole });
export const RemoveMember = z.strictObject({ reason: Note.optional() }).optional();

/** Rules as callers send them: money as decimal strings (null: no limit), times in milliseconds. */
export const RULE_FIELDS = {
  approvalsRequired: z.number().int().min(1).max(500).optional(),
  rejectionsToReject: z.number().int().min(1).max(500).optional(),
  maxPerWithdrawal: AmountText.nullable().optional(),
  maxPerDay: AmountText.nullable().optional(),
  maxWithdrawalsPerWindow: z.number().int().min(1).max(1_000).nullable().optional(),
  windowMs: z.number().int().min(60_000).max(31 * 86_400_000).optional(),
  requestLifetimeMs: z.number().int().min(60_000).max(90 * 86_400_000).optional(),
};
export const someRuleGiven = (rules: Record<string, unknown>) => Object.keys(RULE_FIELDS).some((k) => rules[k] !== undefined);
export const ChangeRules = z.strictObject(RULE_FIELDS).refine(someRuleGiven, "give at least one rule to change");

export const ChamaDeposit = z.strictObject({ memberId: MemberId, amount: AmountText, reference: token(128).optional() });
export const ReviewBody = z.strictObject({ note: Note.optional() }).optional();
export const ChamaStepBody = z.strictObject({ reason: Note.optional() }).optional();

const CHAMA_WITHDRAWAL_STATUSES = ["pending_approval", "manual_review", "approved", "processing", "completed", "failed", "rejected", "expired", "cancelled"] as const;
export const ChamaWithdrawalQuery = z.strictObject({
  status: z.enum(CHAMA_WITHDRAWAL_STATUSES).optional(),
  limit: ListQuery.shape.limit,
  cursor: z.uuid().optional(),
});
export const AuditQuery = ListQuery;
