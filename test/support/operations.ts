import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type { Operation } from "../../src/api/operation";
import { operationNamed } from "../../src/api/operations";
import { ADMIN, tokenFor, user, type As } from "./auth";
import type { ApiResponse, TestNode } from "./node";
import { stripeSettled } from "./stripe";
import { DEFAULT_RULES } from "../../src/monitoring/rules";
import { parseNetworks } from "../../src/integrations/chain/config";

/**
 * One fixture per operation of the table (src/api/operations/): `arrange(name)` builds fresh
 * objects for that operation on a running test node (through its REST API, as an admin and the
 * people concerned) and returns a valid input and the caller who should succeed with it. The
 * security suites, the transport suite and the money-tier suite take every operation from the
 * table and their inputs from here, so an operation without a fixture fails them all (arrange
 * throws) until it gets one.
 *
 * Who is who. Wallets belong to OWNER_A; OWNER_B is a stranger to them; transfers go to a wallet of
 * OWNER_C (the "peer"). A chama has CHAMA_ADMIN (who is OWNER_A) and SECOND_ADMIN as admins,
 * MEMBER and OTHER_MEMBER as plain members, INVITEE invited, FORMER removed; STRANGER was never part
 * of it, and NEWCOMER is nobody yet (invitations and direct adds name them).
 */
export const OWNER_A = "user-a";
export const OWNER_B = "user-b";
export const OWNER_C = "user-c";

export const CHAMA_ADMIN = OWNER_A;
export const SECOND_ADMIN = "user-a2";
export const MEMBER = "user-m";
export const OTHER_MEMBER = "user-x";
export const INVITEE = "user-i";
export const FORMER = "user-f";
export const STRANGER = "user-s";
export const NEWCOMER = "user-new";
/** The chama's name: what a stranger must never learn. */
export const CHAMA_NAME = "Umoja";

export const BANK = { type: "bank", account: "DE89 3704 0044 0532 0130 00" } as const;

/**
 * `ready` (the default): the call succeeds for `as`. `refused`: a valid input that passes every
 * check of its shape and is then refused (the object is finished, or the caller may not), writing
 * nothing but its idempotency record: what the hostile-input suite sends free text to. Only some
 * operations have one; asking another for it throws.
 */
export type State = "ready" | "refused";

export interface Fixture {
  op: Operation;
  state: State;
  /** Path parameters and query or body fields in one object, as the NATS API takes it. */
  input: Record<string, unknown>;
  /** Who the call is made as (who succeeds with it, in the `ready` state). */
  as: As;
  /** User A's wallet the operation acts on (or the wallet a transfer leaves). */
  wallet?: string;
  withdrawal?: string;
  transfer?: string;
  /** OWNER_C's wallet: the receiver of transfers. */
  peer?: string;
  apiKey?: string;
  chama?: string;
  /** User A's card deposit the operation acts on. */
  deposit?: string;
  /** The webhook endpoint (WEBHOOK_APP's) and the delivery the operation acts on. */
  endpoint?: string;
  delivery?: string;
  /** The chain payout pipeline's dead letter the operation acts on. */
  entry?: string;
}

type Arranged = Omit<Fixture, "op" | "state">;

export interface Fixtures {
  /** A fresh fixture for the operation `name`; throws for a name (or state) it has no fixture for. */
  arrange(name: string, state?: State): Promise<Fixture>;
  /** Whether there is a fixture for `name` in `state`. */
  has(name: string, state: State): boolean;
}

const USER_A = user(OWNER_A);
/** A platform credential: a service with exactly one permission. */
const service = (perm: NonNullable<As["perms"]>[number]): As => ({ sub: "svc-fixture", role: "service", perms: [perm] });
/**
 * The app whose webhook endpoints the fixtures register: a service sees only the endpoints it
 * registered, so this is the subject the security suites call services as (test/security/ownership.test.ts).
 */
export const WEBHOOK_APP: As = { sub: "svc-1", role: "service", perms: ["webhooks:write", "webhooks:read"] };
/** Never resolves (RFC 6761 `.invalid`): the fixtures' deliveries fail with `dns`, and nothing is sent anywhere. */
const HOOK_URL = "https://hooks.coffer.invalid/coffer";
/** An event no fixture makes (Stripe disputes): endpoints that need no delivery receive none. */
const QUIET_EVENTS = ["deposit.dispute.changed"];

/** The wallet side: what each fixture needs of user A's wallet. */
type WalletNeed = "funded" | "frozen" | "empty" | "requested" | "processing" | "completed" | "settled";

/** The chama side: the chama's state and which of MEMBER's withdrawals the operation acts on. */
interface ChamaNeed {
  state: "funded" | "frozen" | "empty";
  withdrawal?: "pending" | "approved" | "processing" | "cancelled";
}

export function operationFixtures(t: TestNode): Fixtures {
  let peer: Promise<string> | undefined;

  async function created(method: string, path: string, body?: unknown, as: As = ADMIN, status = 201): Promise<any> {
    const res = await t.api(method, path, body, { as });
    if (res.status !== status) throw new Error(`arranging ${method} ${path} failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  function peerWallet(): Promise<string> {
    peer ??= created("POST", "/v1/wallets", { ownerId: OWNER_C, asset: "USD" }).then((w) => w.id as string);
    return peer;
  }

  /** User A's wallet in the state asked for, with the withdrawal or transfer it needs. */
  async function wallet(need: WalletNeed): Promise<Arranged & { wallet: string }> {
    const wallet = (await created("POST", "/v1/wallets", { ownerId: OWNER_A, asset: "USD" })).id as string;
    const base = { input: {}, as: USER_A, wallet, peer: await peerWallet() };
    if (need === "empty") return base;
    await created("POST", `/v1/wallets/${wallet}/credits`, { amount: "10.00" });
    if (need === "frozen") await created("POST", `/v1/wallets/${wallet}/freeze`, undefined, ADMIN, 200);
    if (need === "funded" || need === "frozen") return base;
    if (need === "settled") {
      const transfer = (await created("POST", "/v1/transfers", { fromWalletId: wallet, toWalletId: base.peer, amount: "1.00" })).id as string;
      if (!(await t.node.saga.idle())) throw new Error("arranging a transfer: the saga did not settle it");
      return { ...base, transfer };
    }
    const withdrawal = (await created("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: BANK })).id as string;
    if (need === "processing" || need === "completed") await created("POST", `/v1/withdrawals/${withdrawal}/process`, undefined, ADMIN, 200);
    if (need === "completed") await created("POST", `/v1/withdrawals/${withdrawal}/complete`, undefined, ADMIN, 200);
    return { ...base, withdrawal };
  }

  /** A fresh chama (see the people above), built by its admin; MEMBER funds it and asks for withdrawals. */
  async function chama(need: ChamaNeed): Promise<Arranged & { chama: string; withdrawal?: string }> {
    const admin = user(CHAMA_ADMIN);
    const chama = (await created("POST", "/v1/chamas", { name: CHAMA_NAME, asset: "USD" }, admin)).id as string;
    const at = `/v1/chamas/${chama}`;
    await Promise.all([
      created("POST", `${at}/members`, { memberId: SECOND_ADMIN, role: "admin" }, admin),
      ...[MEMBER, OTHER_MEMBER, FORMER].map((memberId) => created("POST", `${at}/members`, { memberId }, admin)),
      created("POST", `${at}/invitations`, { memberId: INVITEE }, admin),
    ]);
    await created("POST", `${at}/members/${FORMER}/remove`, {}, admin, 200);
    const base = { input: {}, as: admin, chama };
    if (need.state === "empty") return base;
    await created("POST", `${at}/deposits`, { memberId: MEMBER, amount: "100.00" });
    let withdrawal: string | undefined;
    if (need.withdrawal) {
      withdrawal = (await created("POST", `${at}/withdrawals`, { amount: "1.00", destination: BANK }, user(MEMBER))).id as string;
      const step = (name: string, as: As) => created("POST", `${at}/withdrawals/${withdrawal}/${name}`, {}, as, 200);
      if (need.withdrawal === "cancelled") await step("cancel", user(MEMBER));
      if (need.withdrawal === "approved" || need.withdrawal === "processing") await step("approve", admin);
      if (need.withdrawal === "processing") await step("continue", user(MEMBER));
    }
    if (need.state === "frozen") await created("POST", `${at}/freeze`, {}, admin, 200);
    return { ...base, ...(withdrawal ? { withdrawal } : {}) };
  }

  /** MEMBER's own wallet in the chama's asset, with money in it (what MEMBER contributes from). */
  async function memberWallet(): Promise<string> {
    const wallet = (await created("POST", "/v1/wallets", { ownerId: MEMBER, asset: "USD" })).id as string;
    await created("POST", `/v1/wallets/${wallet}/credits`, { amount: "10.00" });
    return wallet;
  }

  /**
   * A card deposit of 10.00 into a wallet of user A: `pending` (made, not paid), `paid` (the card
   * holder paid it and Coffer credited it), or `refunded` (paid, then all of it refunded).
   */
  async function deposit(need: "pending" | "paid" | "refunded"): Promise<Arranged & { wallet: string; deposit: string }> {
    const wallet = (await created("POST", "/v1/wallets", { ownerId: OWNER_A, asset: "USD" })).id as string;
    const made = await created("POST", `/v1/wallets/${wallet}/deposits`, { amount: "10.00" }, USER_A);
    if (need !== "pending") {
      if (!t.stripe) throw new Error("arranging a paid deposit needs the node's Stripe stand-in");
      await t.stripe.client.paymentIntents.confirm(made.stripe.paymentIntentId, { payment_method: "pm_card_visa" });
      await stripeSettled(t.node, t.stripe.standin);
    }
    if (need === "refunded") {
      await created("POST", `/v1/deposits/${made.id}/refunds`, {}, USER_A);
      await stripeSettled(t.node, t.stripe!.standin);
    }
    return { input: {}, as: USER_A, wallet, deposit: made.id as string };
  }

  async function apiKey(revoked = false): Promise<Arranged & { apiKey: string }> {
    const apiKey = (await created("POST", "/v1/api-keys", { name: "fixture key", subject: "svc-fixture", permissions: ["wallets:read"] })).id as string;
    if (revoked) await created("POST", `/v1/api-keys/${apiKey}/revoke`, undefined, ADMIN, 200);
    return { input: {}, as: ADMIN, apiKey };
  }

  /** A webhook endpoint of WEBHOOK_APP's, enabled or disabled. */
  async function webhookEndpoint(disabled = false): Promise<Arranged & { endpoint: string }> {
    const endpoint = (await created("POST", "/v1/webhook-endpoints", { url: HOOK_URL, events: QUIET_EVENTS }, WEBHOOK_APP)).id as string;
    if (disabled) await created("POST", `/v1/webhook-endpoints/${endpoint}/disable`, {}, WEBHOOK_APP, 200);
    return { input: {}, as: WEBHOOK_APP, endpoint };
  }

  /**
   * An endpoint of WEBHOOK_APP's with one delivery, attempted once (it failed, and waits a minute
   * for its retry: reads of it stay the same meanwhile). Its event is a wallet's closing, which
   * other fixtures rarely make.
   */
  async function webhookDelivery(): Promise<Arranged & { endpoint: string; delivery: string }> {
    const endpoint = (await created("POST", "/v1/webhook-endpoints", { url: HOOK_URL, events: ["wallet.closed"] }, WEBHOOK_APP)).id as string;
    const wallet = (await created("POST", "/v1/wallets", { ownerId: OWNER_A, asset: "USD" })).id as string;
    await created("POST", `/v1/wallets/${wallet}/close`, undefined, ADMIN, 200);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      await t.node.webhookDelivery.idle(2_000);
      const log = await t.api("GET", `/v1/webhook-endpoints/${endpoint}/deliveries`, undefined, { as: WEBHOOK_APP });
      const first = log.body?.items?.[0];
      if (first?.attempts?.length) return { input: {}, as: WEBHOOK_APP, endpoint, delivery: first.id as string };
    }
    throw new Error("arranging a webhook delivery: none was attempted");
  }

  /**
   * A fresh monitoring alert, open (or dismissed): someone new withdraws to a bank account, and the
   * monitoring worker, run by hand, raises its new-destination alert (the default rules only flag).
   */
  async function alert(dismissed = false): Promise<Arranged & { alertId: string }> {
    // A uuid as the owner's id: the alert is about them, and the transport suite compares answers apart from ids.
    const owner = crypto.randomUUID();
    const wallet = (await created("POST", "/v1/wallets", { ownerId: owner, asset: "USD" })).id as string;
    await created("POST", `/v1/wallets/${wallet}/credits`, { amount: "10.00" });
    await created("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: BANK });
    if (!(await t.node.monitoring.settle())) throw new Error("arranging an alert: monitoring did not catch up");
    const [row] = await t.node.db`select id from monitoring_alerts where subject_id = ${owner} and rule = 'new_destination'`;
    if (!row) throw new Error("arranging an alert: none was raised");
    if (dismissed) await created("POST", `/admin/alerts/${row.id}/review`, { status: "dismissed" }, ADMIN, 200);
    return { input: {}, as: ADMIN, alertId: row.id as string };
  }

  /** User A's withdrawal held by monitoring (the system's hold, as the worker sends it), or only requested. */
  async function heldWithdrawal(held = true): Promise<Arranged & { withdrawal: string }> {
    const w = await wallet("requested");
    if (held) {
      const reply = await t.node.ops.system(w.wallet, `fixture:hold:${w.withdrawal}`, { type: "withdrawal.hold", withdrawalId: w.withdrawal!, reason: "held for review", at: new Date().toISOString() });
      if (reply.status !== 200) throw new Error(`arranging a held withdrawal failed: ${reply.status} ${JSON.stringify(reply.body)}`);
    }
    return { ...w, withdrawal: w.withdrawal!, as: ADMIN };
  }

  /**
   * The chain operator routes' objects. Test nodes start without NETWORKS_FILE, so no worker pays
   * anything: a payout row put into `chain_payouts` (for a withdrawal of user A requested through
   * the API, so its keys hold) stays as it was put. Payouts are on `ethereum`, which no suite node
   * configures; the network the pause and resume fixtures act on is added to the node's parsed
   * networks, which only the operator routes read (no worker is started for it), so the networks
   * view has nothing of the payouts' and reads the same twice.
   */
  function chainNetwork(): string {
    t.node.networks[CHAIN_FIXTURE_NETWORK] ??= parseNetworks({
      [CHAIN_FIXTURE_NETWORK]: { kind: "evm", chainId: 1, rpcUrls: ["http://127.0.0.1:9/"], assets: { ETH: { native: true } }, feeModel: "eip1559", confirmations: 1 },
    })[CHAIN_FIXTURE_NETWORK]!;
    return CHAIN_FIXTURE_NETWORK;
  }

  /** A withdrawal of 0.5 ETH by user A with its chain payout row in `status` (`signed`: a signed transaction is stored). */
  async function chainPayout(status: string, opts: { parkedFrom?: string; signed?: boolean } = {}): Promise<Arranged & { withdrawal: string }> {
    const wallet = (await created("POST", "/v1/wallets", { ownerId: OWNER_A, asset: "ETH" })).id as string;
    await created("POST", `/v1/wallets/${wallet}/credits`, { amount: "1" });
    const withdrawal = (await created("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "0.5", destination: CHAIN_DESTINATION })).id as string;
    const signed = opts.signed ?? ["signed", "broadcast", "confirmed", "completed", "cancelling"].includes(status);
    await t.node.db`insert into chain_payouts (withdrawal_id, wallet_id, network, from_address, to_address, amount, status, asset, parked_from, raw_tx, nonce, last_error)
      values (${withdrawal}, ${wallet}, 'ethereum', ${CHAIN_HOT_WALLET}, ${CHAIN_DESTINATION.address}, ${"500000000000000000"}, ${status}, 'ETH', ${opts.parkedFrom ?? null},
        ${signed ? "0x02f86b0107" : null}, ${signed ? "7" : null}, ${status === "parked" ? "gas estimate over the cap" : null})`;
    return { input: {}, as: ADMIN, wallet, withdrawal };
  }

  /** A dead letter (open, or deleted) of a payout parked at broadcast. */
  async function deadLetter(status: "open" | "deleted"): Promise<Arranged & { entry: string }> {
    const p = await chainPayout("parked", { parkedFrom: "broadcast", signed: true });
    const entry = crypto.randomUUID();
    await t.node.db`insert into chain_dlq (id, withdrawal_id, network, stage, reason, attempts, status)
      values (${entry}, ${p.withdrawal}, 'ethereum', 'broadcast', 'rpc unavailable', 5, ${status})`;
    return { ...p, entry };
  }

  /** A time range around now, fixed when arranged (so two reads of it answer the same). */
  const aroundNow = () => ({ from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date(Date.now() + 86_400_000).toISOString() });

  /** How to arrange each state an operation has a fixture for (`ready` always; `refused` where there is one). */
  type Builder = { ready: () => Promise<Arranged>; refused?: () => Promise<Arranged> };
  type WalletFields = (w: Arranged & { wallet: string; peer?: string }) => Record<string, unknown>;
  const onWallet = (need: WalletNeed, fields: WalletFields, as: As = USER_A): Builder => ({
    ready: () => wallet(need).then((w) => ({ ...w, input: fields(w), as })),
  });
  const walletId: WalletFields = (w) => ({ walletId: w.wallet });
  const withWalletId = (more: Record<string, unknown>): WalletFields => (w) => ({ walletId: w.wallet, ...more });
  /** A withdrawal step; refused: the same step on a completed withdrawal (a finished one takes no step). */
  const onWithdrawal = (need: WalletNeed, more: Record<string, unknown>, as: As): Builder => {
    const at = (n: WalletNeed) => () => wallet(n).then((w) => ({ ...w, input: { withdrawalId: w.withdrawal, ...more }, as }));
    return { ready: at(need), refused: at("completed") };
  };
  type ChamaFields = (c: Arranged & { chama: string; withdrawal?: string }) => Record<string, unknown>;
  /** An operation on a chama; `refused`, where there is one: the chama it is refused on, and by whom. */
  const onChama = (need: ChamaNeed, fields: ChamaFields, as: As = user(CHAMA_ADMIN), refused?: { need: ChamaNeed; as?: As }): Builder => {
    const at = (n: ChamaNeed, who: As) => () => chama(n).then((c) => ({ ...c, input: { chamaId: c.chama, ...fields(c) }, as: who }));
    return { ready: at(need, as), ...(refused ? { refused: at(refused.need, refused.as ?? as) } : {}) };
  };
  const plain = (more: Record<string, unknown> = {}): ChamaFields => () => more;
  const step = (more: Record<string, unknown> = {}): ChamaFields => (c) => ({ withdrawalId: c.withdrawal, ...more });
  /** Nothing to arrange: the input alone (and, refused, another caller). */
  const given = (input: Record<string, unknown>, as: As, refusedAs?: As): Builder => ({
    ready: async () => ({ input, as }),
    ...(refusedAs ? { refused: async () => ({ input, as: refusedAs }) } : {}),
  });
  const onKey = (more: Record<string, unknown>, refusedWhenRevoked = false): Builder => {
    const at = (revoked: boolean) => () => apiKey(revoked).then((k) => ({ ...k, input: { keyId: k.apiKey, ...more } }));
    return { ready: at(false), ...(refusedWhenRevoked ? { refused: at(true) } : {}) };
  };

  const FUNDED_WITH_PENDING: ChamaNeed = { state: "funded", withdrawal: "pending" };
  const CANCELLED: ChamaNeed = { state: "funded", withdrawal: "cancelled" };
  const PROCESSOR = service("withdrawals:process");

  const BUILDERS: Record<string, Builder> = {
    // Refused: user B opening a wallet for user A.
    "wallets.create": given({ ownerId: OWNER_A, asset: "USD" }, USER_A, user(OWNER_B)),
    // User A's own wallets (user B naming user A is refused: users list their own only).
    "wallets.list": onWallet("funded", () => ({ ownerId: OWNER_A, limit: 10 })),
    "wallets.get": onWallet("funded", walletId),
    "wallets.transactions.list": onWallet("funded", withWalletId({ limit: 10 })),
    "wallets.credits.create": onWallet("funded", withWalletId({ amount: "1.00", reference: "topup-1" }), service("credits:write")),
    "wallets.payments.create": onWallet("funded", withWalletId({ amount: "1.00", reference: "order-1" })),
    "wallets.withdrawals.create": onWallet("funded", withWalletId({ amount: "1.00", destination: BANK })),
    "wallets.freeze": onWallet("funded", walletId, service("wallets:admin")),
    "wallets.unfreeze": onWallet("frozen", walletId, service("wallets:admin")),
    "wallets.close": onWallet("empty", walletId),
    "withdrawals.get": onWallet("requested", (w) => ({ withdrawalId: w.withdrawal })),
    "withdrawals.process": onWithdrawal("requested", { reason: "sent to the bank" }, PROCESSOR),
    "withdrawals.complete": onWithdrawal("processing", {}, PROCESSOR),
    "withdrawals.fail": onWithdrawal("processing", { reason: "bank refused" }, PROCESSOR),
    "withdrawals.cancel": onWithdrawal("requested", { reason: "changed my mind" }, USER_A),
    "transfers.create": onWallet("funded", (w) => ({ fromWalletId: w.wallet, toWalletId: w.peer, amount: "1.00" })),
    "transfers.get": onWallet("settled", (w) => ({ transferId: w.transfer })),

    // Naming CHAMA_ADMIN: platform admins and services may name anyone, a user only themselves
    // (refused: OTHER_MEMBER naming CHAMA_ADMIN).
    "chamas.create": given({ name: CHAMA_NAME, asset: "USD", adminId: CHAMA_ADMIN }, user(CHAMA_ADMIN), user(OTHER_MEMBER)),
    // The chamas of whoever calls (no chamaId: a list of them).
    "chamas.list": { ready: () => chama({ state: "funded" }).then((c) => ({ ...c, input: { limit: 10 }, as: user(CHAMA_ADMIN) })) },
    "chamas.get": onChama({ state: "funded" }, plain()),
    "chamas.freeze": onChama({ state: "funded" }, plain()),
    "chamas.unfreeze": onChama({ state: "frozen" }, plain()),
    "chamas.close": onChama({ state: "empty" }, plain()),
    "chamas.invitations.create": onChama({ state: "funded" }, plain({ memberId: NEWCOMER })),
    "chamas.invitations.accept": onChama({ state: "funded" }, plain(), user(INVITEE)),
    "chamas.members.add": onChama({ state: "funded" }, plain({ memberId: NEWCOMER, role: "member" })),
    "chamas.members.list": onChama({ state: "funded" }, plain()),
    "chamas.members.get": onChama({ state: "funded" }, plain({ memberId: MEMBER })),
    // Refused: a plain member may not remove another, nor change anyone's role (the chama machine's rules).
    "chamas.members.remove": onChama({ state: "funded" }, plain({ memberId: OTHER_MEMBER, reason: "moved away" }), user(CHAMA_ADMIN), { need: { state: "funded" }, as: user(MEMBER) }),
    "chamas.members.role": onChama({ state: "funded" }, plain({ memberId: OTHER_MEMBER, role: "admin" }), user(CHAMA_ADMIN), { need: { state: "funded" }, as: user(MEMBER) }),
    // Refused: a plain member may not change the rules.
    "chamas.rules": onChama({ state: "funded" }, plain({ maxPerDay: "100.00" }), user(CHAMA_ADMIN), { need: { state: "funded" }, as: user(MEMBER) }),
    // MEMBER funds the chama from their own wallet.
    "chamas.contributions.create": {
      ready: async () => {
        const c = await chama({ state: "funded" });
        return { ...c, input: { chamaId: c.chama, fromWalletId: await memberWallet(), amount: "1.00" }, as: user(MEMBER) };
      },
    },
    "chamas.deposits.create": onChama({ state: "funded" }, plain({ memberId: MEMBER, amount: "1.00", reference: "mpesa-1" }), ADMIN),
    // CHAMA_ADMIN may ask too (SECOND_ADMIN can approve); MEMBER asks in the fixture, as the requester.
    "chamas.withdrawals.create": onChama({ state: "funded" }, plain({ amount: "1.00", destination: BANK }), user(MEMBER)),
    "chamas.withdrawals.list": onChama(FUNDED_WITH_PENDING, plain({ limit: 10 })),
    "chamas.withdrawals.get": onChama(FUNDED_WITH_PENDING, step()),
    "chamas.withdrawals.reviews.list": onChama(FUNDED_WITH_PENDING, step()),
    // Steps on MEMBER's withdrawal; refused: the same step on a cancelled one.
    "chamas.withdrawals.approve": onChama(FUNDED_WITH_PENDING, step({ note: "ok" }), user(CHAMA_ADMIN), { need: CANCELLED }),
    "chamas.withdrawals.reject": onChama(FUNDED_WITH_PENDING, step({ note: "no" }), user(CHAMA_ADMIN), { need: CANCELLED }),
    "chamas.withdrawals.park": onChama(FUNDED_WITH_PENDING, step({ note: "odd destination" }), user(CHAMA_ADMIN), { need: CANCELLED }),
    "chamas.withdrawals.continue": onChama({ state: "funded", withdrawal: "approved" }, step(), user(MEMBER), { need: CANCELLED }),
    "chamas.withdrawals.cancel": onChama(FUNDED_WITH_PENDING, step({ reason: "changed my mind" }), user(MEMBER), { need: CANCELLED }),
    "chamas.withdrawals.complete": onChama({ state: "funded", withdrawal: "processing" }, step(), PROCESSOR, { need: CANCELLED }),
    "chamas.withdrawals.fail": onChama({ state: "funded", withdrawal: "processing" }, step({ reason: "bank refused" }), PROCESSOR, { need: CANCELLED }),
    "chamas.audit": onChama({ state: "funded" }, plain({ limit: 10 })),

    // Refused: a user may not issue keys.
    "api-keys.create": given({ name: "payments service", subject: "svc-payments", permissions: ["payments:write"] }, ADMIN, USER_A),
    "api-keys.list": { ready: () => apiKey() },
    "api-keys.get": onKey({}),
    "api-keys.revoke": onKey({}),
    // Refused: a revoked key cannot be rotated.
    "api-keys.rotate": onKey({ overlapSeconds: 60 }, true),
    // Webhooks out: WEBHOOK_APP's endpoints. Refused: a user may not register one.
    "webhooks.endpoints.create": given({ url: HOOK_URL, events: QUIET_EVENTS }, WEBHOOK_APP, USER_A),
    "webhooks.endpoints.list": { ready: () => webhookEndpoint().then((e) => ({ ...e, input: { limit: 10 } })) },
    "webhooks.endpoints.get": { ready: () => webhookEndpoint().then((e) => ({ ...e, input: { endpointId: e.endpoint } })) },
    "webhooks.endpoints.disable": { ready: () => webhookEndpoint().then((e) => ({ ...e, input: { endpointId: e.endpoint } })) },
    "webhooks.endpoints.enable": { ready: () => webhookEndpoint(true).then((e) => ({ ...e, input: { endpointId: e.endpoint } })) },
    "webhooks.endpoints.deliveries.list": { ready: () => webhookDelivery().then((d) => ({ ...d, input: { endpointId: d.endpoint, limit: 10 } })) },
    "webhooks.deliveries.redeliver": { ready: () => webhookDelivery().then((d) => ({ ...d, input: { deliveryId: d.delivery } })) },
    "admin.cluster": given({}, ADMIN),
    "admin.verify": given({}, ADMIN),
    // Stripe against the ledger (every test node has its own stand-in).
    "admin.reconciliation": given({}, ADMIN),
    "admin.actors.get": onWallet("funded", walletId, ADMIN),

    // Transaction monitoring and the admin API (admins; auditors read). Refused: a review of an alert
    // already dismissed; a release or rejection of a withdrawal that is not held; rules changed by an auditor.
    "admin.alerts.list": given({ status: "open", limit: 10 }, ADMIN),
    "admin.alerts.get": { ready: () => alert().then((a) => ({ ...a, input: { alertId: a.alertId } })) },
    "admin.alerts.review": {
      ready: () => alert().then((a) => ({ ...a, input: { alertId: a.alertId, status: "investigating", note: "asked the owner" } })),
      refused: () => alert(true).then((a) => ({ ...a, input: { alertId: a.alertId, status: "resolved", note: "asked the owner" } })),
    },
    "admin.monitoring.rules.get": given({}, ADMIN),
    "admin.monitoring.rules.update": given({ rules: DEFAULT_RULES, note: "the defaults" }, ADMIN, { sub: "auditor-fixture", role: "auditor" }),
    "admin.withdrawals.release": {
      ready: () => heldWithdrawal().then((w) => ({ ...w, input: { withdrawalId: w.withdrawal, note: "the owner confirmed it" } })),
      refused: () => heldWithdrawal(false).then((w) => ({ ...w, input: { withdrawalId: w.withdrawal, note: "the owner confirmed it" } })),
    },
    "admin.withdrawals.reject": {
      ready: () => heldWithdrawal().then((w) => ({ ...w, input: { withdrawalId: w.withdrawal, note: "not the owner's account" } })),
      refused: () => heldWithdrawal(false).then((w) => ({ ...w, input: { withdrawalId: w.withdrawal, note: "not the owner's account" } })),
    },
    "admin.transactions.list": { ready: async () => ({ input: { kind: "payment", ...aroundNow(), limit: 10 }, as: ADMIN }) },
    "admin.transactions.get": onWallet("settled", (w) => ({ transactionId: w.transfer }), ADMIN),
    "admin.stats.daily": { ready: async () => ({ input: aroundNow(), as: ADMIN }) },
    "admin.stats.network": { ready: async () => ({ input: aroundNow(), as: ADMIN }) },
    "admin.stats.status": { ready: async () => ({ input: aroundNow(), as: ADMIN }) },
    "admin.health": given({}, ADMIN),

    // Card deposits. Refused: a deposit into a frozen wallet (before Stripe is asked anything);
    // a refund of a deposit already refunded in full.
    "wallets.deposits.create": {
      ready: () => wallet("empty").then((w) => ({ ...w, input: { walletId: w.wallet, amount: "10.00" }, as: USER_A })),
      refused: () => wallet("frozen").then((w) => ({ ...w, input: { walletId: w.wallet, amount: "10.00" }, as: USER_A })),
    },
    "deposits.get": { ready: () => deposit("paid").then((d) => ({ ...d, input: { depositId: d.deposit } })) },
    "deposits.refunds.create": {
      ready: () => deposit("paid").then((d) => ({ ...d, input: { depositId: d.deposit, amount: "1.00" } })),
      refused: () => deposit("refunded").then((d) => ({ ...d, input: { depositId: d.deposit, amount: "1.00" } })),
    },

    // The chain payout pipeline's operator routes (admins; auditors read). Refused: a network that is
    // not configured; a retry of a payout that is not parked, a replace of one not yet signed, a
    // cancel of a completed one; a dead letter already deleted.
    "admin.networks.list": { ready: async () => (chainNetwork(), { input: {}, as: ADMIN }) },
    "admin.networks.pause": {
      ready: async () => ({ input: { network: chainNetwork(), reason: "RPC provider incident" }, as: ADMIN }),
      refused: async () => ({ input: { network: "not-configured", reason: "RPC provider incident" }, as: ADMIN }),
    },
    "admin.networks.resume": {
      ready: async () => ({ input: { network: chainNetwork(), note: "provider recovered" }, as: ADMIN }),
      refused: async () => ({ input: { network: "not-configured", note: "provider recovered" }, as: ADMIN }),
    },
    "admin.payouts.list": { ready: () => chainPayout("parked", { parkedFrom: "broadcast" }).then((p) => ({ ...p, input: { status: "parked", limit: 10 } })) },
    "admin.payouts.retry": {
      ready: () => chainPayout("parked", { parkedFrom: "broadcast" }).then((p) => ({ ...p, input: { withdrawalId: p.withdrawal, note: "gas spike is over" } })),
      refused: () => chainPayout("broadcast").then((p) => ({ ...p, input: { withdrawalId: p.withdrawal, note: "gas spike is over" } })),
    },
    "admin.payouts.replace": {
      ready: () => chainPayout("broadcast").then((p) => ({ ...p, input: { withdrawalId: p.withdrawal, note: "stuck behind the base fee" } })),
      refused: () => chainPayout("claimed").then((p) => ({ ...p, input: { withdrawalId: p.withdrawal, note: "stuck behind the base fee" } })),
    },
    "admin.payouts.cancel": {
      ready: () => chainPayout("claimed").then((p) => ({ ...p, input: { withdrawalId: p.withdrawal, note: "the owner asked" } })),
      refused: () => chainPayout("completed").then((p) => ({ ...p, input: { withdrawalId: p.withdrawal, note: "the owner asked" } })),
    },
    "admin.dlq.list": { ready: () => deadLetter("open").then((d) => ({ ...d, input: { status: "open", limit: 10 } })) },
    "admin.dlq.redrive": {
      ready: () => deadLetter("open").then((d) => ({ ...d, input: { entryId: d.entry, note: "RPC is back" } })),
      refused: () => deadLetter("deleted").then((d) => ({ ...d, input: { entryId: d.entry, note: "RPC is back" } })),
    },
    "admin.dlq.delete": {
      ready: () => deadLetter("open").then((d) => ({ ...d, input: { entryId: d.entry, note: "paid by hand" } })),
      refused: () => deadLetter("deleted").then((d) => ({ ...d, input: { entryId: d.entry, note: "paid by hand" } })),
    },
  };

  return {
    async arrange(name, state = "ready") {
      const op = operationNamed(name);
      const build = BUILDERS[name];
      if (!op || !build) throw new Error(`no fixture for the operation ${name}: add one to test/support/operations.ts`);
      const arranging = build[state];
      if (!arranging) throw new Error(`no ${state} fixture for the operation ${name}`);
      return { ...(await arranging()), op, state };
    },
    has(name, state) {
      return operationNamed(name) !== undefined && BUILDERS[name]?.[state] !== undefined;
    },
  };
}

/** The network the chain operator fixtures pause and resume (added to the test node's networks), and what their payouts pay. */
const CHAIN_FIXTURE_NETWORK = "fixture-chain";
const CHAIN_HOT_WALLET = "0x1111111111111111111111111111111111111111";
const CHAIN_DESTINATION = { type: "crypto", network: "ethereum", address: "0x52908400098527886E0F7030069857D2E4169EE7" } as const;

/** The same input naming objects nobody has: every id in it replaced by a fresh one. */
export function ghostOf(input: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, typeof v === "string" && UUID.test(v) ? crypto.randomUUID() : v]));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ---------------------------------------------------------------------------------------------
// Calling an operation over either transport

/** An answer as either transport gives it: the status, the parsed body and the body's exact text. */
export interface Answer extends ApiResponse {
  text: string;
}

export interface CallOptions {
  as?: As;
  /** The Idempotency-Key for an operation that changes something (fresh when absent; null sends none). */
  key?: string | null;
}

/** The REST request for an operation and an input: path parameters filled in, the rest as query (GET) or JSON body (POST). */
export function restRequestOf(op: Operation, input: Record<string, unknown>): { method: string; path: string; body?: Record<string, unknown> } {
  const rest = { ...input };
  const path = op.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = rest[name];
    if (value === undefined) throw new Error(`${op.name} needs ${name} in its input`);
    delete rest[name];
    return encodeURIComponent(String(value));
  });
  if (op.method === "POST") return { method: "POST", path, body: rest };
  const query = new URLSearchParams(Object.entries(rest).filter(([, v]) => v !== undefined).map(([k, v]): [string, string] => [k, String(v)])).toString();
  return { method: "GET", path: query ? `${path}?${query}` : path };
}

/** Call an operation over REST. */
export async function callRest(t: Pick<TestNode, "baseUrl">, op: Operation, input: Record<string, unknown>, opts: CallOptions = {}): Promise<Answer> {
  const { method, path, body } = restRequestOf(op, input);
  const headers: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${await tokenFor(opts.as ?? ADMIN)}` };
  if (op.idempotent && opts.key !== null) headers["idempotency-key"] = opts.key ?? crypto.randomUUID();
  const res = await fetch(t.baseUrl + path, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: parse(text), text, headers: res.headers };
}

/** Call an operation over the NATS API (`<prefix>.v1.<name>`, the whole input as the payload). */
export async function callNats(nc: NatsConnection, prefix: string, op: Operation, input: Record<string, unknown>, opts: CallOptions = {}): Promise<Answer> {
  const h = natsHeaders();
  h.set("Authorization", `Bearer ${await tokenFor(opts.as ?? ADMIN)}`);
  if (op.idempotent && opts.key !== null) h.set("Idempotency-Key", opts.key ?? crypto.randomUUID());
  const reply = await nc.request(`${prefix}.v1.${op.name}`, JSON.stringify(input), { timeout: 10_000, headers: h });
  const { status, body } = JSON.parse(reply.string()) as { status: number; body: unknown };
  // The body's text as the reply carries it (JSON.stringify keeps the order and form it was parsed from).
  return { status, body, text: JSON.stringify(body), headers: new Headers(status >= 400 ? { "content-type": "application/problem+json" } : { "content-type": "application/json" }) };
}

function parse(text: string): any {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}
