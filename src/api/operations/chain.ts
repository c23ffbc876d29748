import type { TransactionSql } from "postgres";
import { z } from "zod";
import type { Reply } from "../../../actors/envelope";
import { CofferError, refusal } from "../../../lib/errors";
import {
  cancelPayout,
  deleteDeadLetter,
  listDeadLetters,
  listNetworks,
  listPayouts,
  pauseNetwork,
  redriveDeadLetter,
  replacePayout,
  resumeNetwork,
  retryPayout,
} from "../../integrations/chain/operator";
import { CHAIN_PAYOUT_STATUSES, ChainDeadLetterPage, ChainDeadLetterView, ChainNetworkList, ChainNetworkView, ChainPayoutPage, ChainPayoutView, DEAD_LETTER_STATUSES } from "../chain-outputs";
import { exactlyOnce } from "../exactly-once";
import { ok, operation, type OperationDeps } from "../operation";
import { IdCursor, PageLimit, Uuid } from "../schemas";
import { claimOf, type Caller } from "../wallet-service";

/**
 * Operators over the chain payout pipeline (src/integrations/chain/operator.ts): the networks of
 * NETWORKS_FILE (pause, resume, and what each one's hot wallet can still pay), the payouts (retry a
 * parked one; ask the worker to replace or cancel one) and the dead letters (re-drive, delete).
 * Auditors read; platform admins act; no user and no service may do either. The worker alone
 * touches the chain; every change here is made with the payout's row locked, conditional on the
 * status read, and audited in `chain_operator_audit`.
 */
const NetworkName = z.string().regex(/^[a-z0-9_-]{1,40}$/, "a network's name in NETWORKS_FILE (a-z, 0-9, _ and -)");
const Note = z.string().min(1).max(500).regex(/^[^\p{Cc}\p{Cs}]*$/u, "no control characters");
const Word = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/, "use letters, digits and . _ : -");
const network = NetworkName.describe("the network's name in NETWORKS_FILE");
const withdrawalId = Uuid.describe("the withdrawal the chain payout pays");
const entryId = Uuid.describe("the dead letter's id");
const note = Note.optional().describe("why (kept in the operators' audit)");
const EXAMPLE_WITHDRAWAL = "0193a2b4-6d7e-7f80-9a1b-2c3d4e5f6a7b";
const EXAMPLE_ENTRY = "0193a2b4-7e8f-7a0b-8c1d-2e3f4a5b6c7d";

/** Who acted, as the audit trails name platform credentials: `<role>#<subject>`. */
const actorOf = (caller: Caller) => `${caller.principal.role}#${caller.principal.sub}`;

const networksOf = (deps: OperationDeps) => deps.chain?.networks ?? {};

/**
 * Runs an operator's change exactly once per idempotency key, in one transaction with its audit row
 * and the stored answer; a refusal (409, 404) is kept as the key's answer too. After a change the
 * payout workers are woken, so they carry it out without waiting for their next poll.
 */
async function once(deps: OperationDeps, caller: Caller, key: string, name: string, target: string, normalized: unknown, run: (sql: TransactionSql) => Promise<Record<string, unknown>>): Promise<Reply> {
  const reply = await exactlyOnce(deps.db, deps.vault, claimOf(deps.vault, caller, key, name, target, normalized), async (sql) => {
    try {
      // In a savepoint: a refusal keeps nothing of what the change did before it was refused.
      return { status: 200, body: (await sql.savepoint((inner) => run(inner))) as Record<string, unknown> };
    } catch (error) {
      if (error instanceof CofferError && error.status < 500) return refusal(error.code, error.detail);
      throw error;
    }
  });
  if (reply.status < 300) deps.chain?.kick?.();
  return reply;
}

const PAYOUT_ACTIONS = {
  retry: { run: retryPayout, summary: "Retry a parked chain payout: it goes back to the stage it was parked from, its open dead letters re-driven (admins)" },
  replace: { run: replacePayout, summary: "Ask the worker to replace a signed or broadcast chain payout at the same nonce with higher fees (admins)" },
  cancel: {
    run: cancelPayout,
    summary: "Ask the worker to cancel a chain payout: before signing the withdrawal fails at once; once signed, by a 0-value self-send at its nonce (admins)",
  },
} as const;

const DEAD_LETTER_ACTIONS = {
  redrive: { run: redriveDeadLetter, summary: "Re-drive an open dead letter: its parked payout goes back to the stage it was parked from (admins)" },
  delete: { run: deleteDeadLetter, summary: "Delete an open dead letter: settled for good, its payout stays parked (admins)" },
} as const;

export const chainOperations = [
  operation({
    name: "admin.networks.list",
    method: "GET",
    path: "/admin/networks",
    summary: "The networks Coffer pays out on: paused or not, the hot wallet's balance, pending outflow and runway, queue depths, oldest pending payout, last block seen",
    input: z.strictObject({}),
    output: ChainNetworkList,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: {},
    run: ({ deps }) => ok(listNetworks(deps.db, networksOf(deps))),
  }),
  operation({
    name: "admin.networks.pause",
    method: "POST",
    path: "/admin/networks/:network/pause",
    summary: "Pause a network's payouts: they wait, nothing fails; pausing a paused network answers it as it is (admins)",
    input: z.strictObject({ network, reason: Note.describe("why (shown with the network)") }),
    output: ChainNetworkView,
    status: 200,
    action: "chain.networks.manage",
    tier: "standard",
    idempotent: true,
    example: { network: "ethereum", reason: "RPC provider incident" },
    run: ({ caller, key, deps }, input) =>
      once(deps, caller, key, "admin.networks.pause", input.network, { reason: input.reason }, (sql) => pauseNetwork(sql, networksOf(deps), input.network, actorOf(caller), input.reason)),
  }),
  operation({
    name: "admin.networks.resume",
    method: "POST",
    path: "/admin/networks/:network/resume",
    summary: "Resume a network's payouts, whoever paused it (admins)",
    input: z.strictObject({ network, note }),
    output: ChainNetworkView,
    status: 200,
    action: "chain.networks.manage",
    tier: "standard",
    idempotent: true,
    example: { network: "ethereum", note: "provider recovered" },
    run: ({ caller, key, deps }, input) =>
      once(deps, caller, key, "admin.networks.resume", input.network, { note: input.note }, (sql) => resumeNetwork(sql, networksOf(deps), input.network, actorOf(caller), input.note)),
  }),
  operation({
    name: "admin.payouts.list",
    method: "GET",
    path: "/admin/payouts",
    summary: "Chain payouts, newest first, by status and network: stage, nonce, transaction, attempts, why parked, the operator's pending request (admins and auditors)",
    input: z.strictObject({ status: z.enum(CHAIN_PAYOUT_STATUSES).optional(), network: NetworkName.optional(), limit: PageLimit, cursor: IdCursor.optional() }),
    output: ChainPayoutPage,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: { status: "parked", network: "ethereum", limit: 50 },
    run: ({ deps }, q) => ok(listPayouts(deps.db, q)),
  }),
  ...(Object.keys(PAYOUT_ACTIONS) as (keyof typeof PAYOUT_ACTIONS)[]).map((verb) =>
    operation({
      name: `admin.payouts.${verb}`,
      method: "POST",
      path: `/admin/payouts/:withdrawalId/${verb}`,
      summary: PAYOUT_ACTIONS[verb].summary,
      input: z.strictObject({ withdrawalId, note }),
      output: ChainPayoutView,
      status: 200,
      action: "chain.payouts.manage",
      tier: "standard",
      idempotent: true,
      example: { withdrawalId: EXAMPLE_WITHDRAWAL, note: "gas spike is over" },
      run: ({ caller, key, deps }, input: { withdrawalId: string; note?: string | undefined }) =>
        once(deps, caller, key, `admin.payouts.${verb}`, input.withdrawalId, { note: input.note }, (sql) => PAYOUT_ACTIONS[verb].run(sql, input.withdrawalId, actorOf(caller), input.note)),
    }),
  ),
  operation({
    name: "admin.dlq.list",
    method: "GET",
    path: "/admin/dlq",
    summary: "The chain payout pipeline's dead letters, newest first, by network, stage and status (open by default) (admins and auditors)",
    input: z.strictObject({
      network: NetworkName.optional(),
      stage: Word.optional().describe("the stage that gave up"),
      status: z.enum(DEAD_LETTER_STATUSES).default("open"),
      limit: PageLimit,
      cursor: IdCursor.optional(),
    }),
    output: ChainDeadLetterPage,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: { network: "ethereum", status: "open", limit: 50 },
    run: ({ deps }, q) => ok(listDeadLetters(deps.db, q)),
  }),
  ...(Object.keys(DEAD_LETTER_ACTIONS) as (keyof typeof DEAD_LETTER_ACTIONS)[]).map((verb) =>
    operation({
      name: `admin.dlq.${verb}`,
      method: "POST",
      path: `/admin/dlq/:entryId/${verb}`,
      summary: DEAD_LETTER_ACTIONS[verb].summary,
      input: z.strictObject({ entryId, note }),
      output: ChainDeadLetterView,
      status: 200,
      action: "chain.payouts.manage",
      tier: "standard",
      idempotent: true,
      example: { entryId: EXAMPLE_ENTRY, note: verb === "redrive" ? "RPC is back" : "paid by hand" },
      run: ({ caller, key, deps }, input: { entryId: string; note?: string | undefined }) =>
        once(deps, caller, key, `admin.dlq.${verb}`, input.entryId, { note: input.note }, (sql) => DEAD_LETTER_ACTIONS[verb].run(sql, input.entryId, actorOf(caller), input.note)),
    }),
  ),
];
