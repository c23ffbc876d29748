import { isIP } from "node:net";
import { z } from "zod";
import { ASSETS } from "../../lib/assets";
import { compactIban, digitsOnly, isAbaRouting, isIban, KE_ACCOUNT, KE_BANK_CODE, PROVIDER_ACCOUNT, PROVIDER_BANK_TOKEN, US_ACCOUNT } from "../../lib/bank-accounts";
import { NETWORKS } from "../../lib/networks";
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

/**
 * Where a payout goes, one kind per `type`. Bank numbers are checked as far as a number can be
 * (lib/bank-accounts.ts) and kept in their plain form (no spaces, IBANs upper case); a refusal names
 * the field, never the value. Which assets may go where is checked once the wallet's asset is known
 * (lib/networks.ts).
 */
const digits = (pattern: RegExp, message: string) => z.string().max(64).transform(digitsOnly).pipe(z.string().regex(pattern, message));
export const Destination = z.discriminatedUnion("type", [
  z
    .strictObject({
      type: z.literal("bank"),
      account: z
        .string()
        .max(64)
        .transform(compactIban)
        .refine(isIban, "not a valid IBAN: check the country code, the length and the check digits")
        .describe("an IBAN, spaces allowed (\"DE89 3704 0044 0532 0130 00\")"),
    })
    .describe("a bank account by its IBAN"),
  z
    .strictObject({
      type: z.literal("us_bank"),
      routing: digits(/^[0-9]{9}$/, "a routing number has 9 digits").refine(isAbaRouting, "not a valid ABA routing number").describe("the bank's 9-digit ABA routing number"),
      account: digits(US_ACCOUNT, "a US account number has 4 to 17 digits").describe("the account number, 4 to 17 digits"),
    })
    .describe("a US bank account (ACH)"),
  z
    .strictObject({
      type: z.literal("ke_bank"),
      bankCode: z.string().regex(KE_BANK_CODE, "the bank's two-digit code (\"01\" KCB, \"68\" Equity, …)").describe("the bank's two-digit CBK code"),
      account: digits(KE_ACCOUNT, "a Kenyan account number has 6 to 16 digits").describe("the account number, 6 to 16 digits"),
    })
    .describe("a Kenyan bank account"),
  z
    .strictObject({
      type: z.literal("bank_token"),
      token: z.string().max(80).regex(PROVIDER_BANK_TOKEN, "a Stripe bank account (ba_…) or bank token (btok_…)").describe("a bank account saved at the payment provider"),
    })
    .describe("a bank account held by the payment provider"),
  z
    .strictObject({
      type: z.literal("stripe_account"),
      account: z.string().max(80).regex(PROVIDER_ACCOUNT, "a Stripe connected account (acct_…)").describe("the connected account's id at Stripe"),
    })
    .describe("a Stripe connected account, paid by a Connect transfer"),
  z
    .strictObject({
      type: z.literal("crypto"),
      network: z.enum(NETWORKS),
      // Checked per network once the asset and amount are known (lib/addresses/): a refusal there is
      // INVALID_ADDRESS. Invoices run long (route hints), hence the ceiling; sealed, it must still fit
      // the bus's sealed-destination ceiling (actors/bus/envelope-schema.ts, 4096 base64 characters).
      address: text(2048).describe("the network's address (`0x…`, `bc1…`, `alice.near`, `EQ…`), or for `lightning` a BOLT-11 invoice (`lnbc…`)"),
    })
    .describe("an address on a blockchain, or a Lightning invoice"),
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

// Personal and group wallets meet (transfers between a wallet and a chama), and finding your things.
/** A chama withdrawal paid into a wallet: one of the requester's own, in the chama's asset. */
export const WalletDestination = z
  .strictObject({ type: z.literal("wallet"), walletId: Uuid.describe("one of your own wallets, in the chama's asset") })
  .describe("into one of your own wallets (moved at once when the withdrawal is continued)");
/** Where a chama's withdrawal may go: wherever a wallet's may, or into a wallet of the requester's. */
export const ChamaDestination = z.discriminatedUnion("type", [Destination, WalletDestination]);
export const RequestChamaWithdrawal = z.strictObject({ amount: AmountText, destination: ChamaDestination });

/** A member funds the chama from their own wallet (the chama is the path's). */
export const CreateContribution = z.strictObject({ fromWalletId: Uuid.describe("the wallet the money leaves: yours, in the chama's asset"), amount: AmountText });

/** A list's position: the id of the last item of the previous page (compared as a uuid, with its time). */
export const IdCursor = Uuid.describe("the nextCursor of the previous page");
export const ListWallets = z.strictObject({
  ownerId: token(128).optional().describe("whose wallets (users: only their own; absent: your own, or every wallet for platform readers)"),
  limit: PageLimit,
  cursor: IdCursor.optional(),
});
export const ListChamas = z.strictObject({
  memberId: MemberId.optional().describe("whose chamas (users: only their own; absent: your own, or every chama for platform readers)"),
  limit: PageLimit,
  cursor: IdCursor.optional(),
});
