import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { tokenFor, type As } from "../support/auth";
import { deleteClusterState } from "../support/nats";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/**
 * The request-reply API over a real NATS server (NATS_URL, default 127.0.0.1:4222). Under CI the
 * server is started by .ci/run; without one these tests fail rather than pass silently.
 */
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const PREFIX = `coffertest${crypto.randomUUID().slice(0, 8)}`;

let t: TestNode;
let nc: NatsConnection;
beforeAll(async () => {
  t = await startTestNode("natsapi", { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX });
  nc = await connect({ servers: NATS_URL });
});
afterAll(async () => {
  await nc.drain();
  await t.stop();
  await deleteClusterState(PREFIX, `${PREFIX}l`);
});

interface Reply {
  status: number;
  body: any;
}

async function call(operation: string, payload: unknown, opts: { as?: As; key?: string | null; token?: string | null; raw?: string } = {}): Promise<Reply> {
  const h = headers();
  const token = opts.token === undefined ? await tokenFor(opts.as) : opts.token;
  if (token !== null) h.set("Authorization", `Bearer ${token}`);
  if (opts.key !== null) h.set("Idempotency-Key", opts.key ?? crypto.randomUUID());
  const reply = await nc.request(`${PREFIX}.v1.${operation}`, opts.raw ?? JSON.stringify(payload), { timeout: 5_000, headers: h });
  return JSON.parse(reply.string()) as Reply;
}

describe("the same operations as REST", () => {
  test("create, credit, pay and read a wallet over NATS; REST sees the same wallet", async () => {
    const created = await call("wallets.create", { ownerId: "nats-owner", asset: "USD" });
    expect(created.status).toBe(201);
    const walletId = created.body.id;
    expect((await call("wallets.credits.create", { walletId, amount: "10.00" })).status).toBe(201);
    const paid = await call("wallets.payments.create", { walletId, amount: "2.50", reference: "order-1" });
    expect(paid.status).toBe(201);
    expect(paid.body.balance.available).toBe("7.50");
    const read = await call("wallets.get", { walletId }, { key: null });
    expect(read).toEqual({ status: 200, body: (await t.api("GET", `/v1/wallets/${walletId}`)).body });
  });

  test("a transfer over NATS settles like one over REST", async () => {
    const from = await fundedWallet(t.api, "USD", "5.00");
    const to = await fundedWallet(t.api, "USD");
    const created = await call("transfers.create", { fromWalletId: from, toWalletId: to, amount: "1.00" });
    expect(created.status).toBe(201);
    expect(await t.node.saga.idle()).toBe(true);
    expect((await call("transfers.get", { transferId: created.body.id }, { key: null })).body.status).toBe("settled");
  });
});

describe("idempotency, as on REST", () => {
  test("the same key 5 times at once: one payment, five identical replies", async () => {
    const walletId = await fundedWallet(t.api, "USD", "10.00");
    const key = crypto.randomUUID();
    const replies = await Promise.all(Array.from({ length: 5 }, () => call("wallets.payments.create", { walletId, amount: "3.00" }, { key })));
    for (const r of replies) expect(r).toEqual(replies[0]!);
    expect((await t.api("GET", `/v1/wallets/${walletId}`)).body.balance.posted).toBe("7.00");
  });

  test("a key first used over REST replays over NATS; another body is a 422", async () => {
    const walletId = await fundedWallet(t.api, "USD", "10.00");
    const key = crypto.randomUUID();
    const rest = await t.api("POST", `/v1/wallets/${walletId}/payments`, { amount: "1.00" }, { key });
    expect(await call("wallets.payments.create", { walletId, amount: "1.00" }, { key })).toEqual({ status: rest.status, body: rest.body });
    const other = await call("wallets.payments.create", { walletId, amount: "2.00" }, { key });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("IDEMPOTENCY_CONFLICT");
  });

  test("a change without an Idempotency-Key is a 400", async () => {
    const walletId = await fundedWallet(t.api, "USD", "10.00");
    const r = await call("wallets.payments.create", { walletId, amount: "1.00" }, { key: null });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("IDEMPOTENCY_KEY_REQUIRED");
  });
});

describe("authentication and ownership, as on REST", () => {
  test("no credential or a bad one is a 401", async () => {
    expect((await call("wallets.create", { ownerId: "x", asset: "USD" }, { token: null })).body.code).toBe("UNAUTHENTICATED");
    expect((await call("wallets.create", { ownerId: "x", asset: "USD" }, { token: "e30.e30.sig" })).status).toBe(401);
  });

  test("user B paying from user A's wallet is a 404 and changes nothing", async () => {
    const walletId = await fundedWallet(t.api, "USD", "10.00", "nats-user-a");
    const r = await call("wallets.payments.create", { walletId, amount: "1.00" }, { as: { sub: "nats-user-b", role: "user" } });
    expect(r.status).toBe(404);
    expect(r.body.code).toBe("WALLET_NOT_FOUND");
    expect((await t.api("GET", `/v1/wallets/${walletId}`)).body.balance.posted).toBe("10.00");
  });

  test("a service without the permission is a 403; with it, it may pay", async () => {
    const walletId = await fundedWallet(t.api, "USD", "10.00");
    expect((await call("wallets.payments.create", { walletId, amount: "1.00" }, { as: { sub: "svc", role: "service", perms: ["wallets:read"] } })).status).toBe(403);
    expect((await call("wallets.payments.create", { walletId, amount: "1.00" }, { as: { sub: "svc", role: "service", perms: ["payments:write"] } })).status).toBe(201);
  });
});

describe("bad input, as on REST", () => {
  test.each([
    ["malformed JSON", "wallets.payments.create", undefined, "{not json"],
    ["an unknown field", "wallets.payments.create", { walletId: crypto.randomUUID(), amount: "1.00", extra: 1 }, undefined],
    ["too many decimals", "wallets.payments.create", "WALLET", undefined],
    ["a path id that is not a UUID", "wallets.get", { walletId: "../../etc" }, undefined],
  ])("%s is a 400", async (_name, operation, payload, raw) => {
    const walletId = await fundedWallet(t.api, "USD", "10.00");
    const body = payload === "WALLET" ? { walletId, amount: "1.001" } : payload;
    const r = await call(operation, body, raw === undefined ? {} : { raw });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("VALIDATION_FAILED");
  });

  test("an unknown operation is a 404", async () => {
    expect((await call("wallets.delete", {})).body.code).toBe("NOT_FOUND");
  });

  test("every field error names the payload as where the field came from, the schema's and the asset's alike", async () => {
    const walletId = await fundedWallet(t.api, "USD", "10.00");
    const schema = await call("wallets.payments.create", { walletId, amount: 1 });
    expect(schema.body.errors).toEqual([{ path: "payload.amount", message: expect.any(String) }]);
    const scale = await call("wallets.payments.create", { walletId, amount: "1.001" });
    expect(scale.body.errors).toEqual([{ path: "payload.amount", message: "USD allows at most 2 decimals" }]);
    expect(scale.body.detail).toBe("invalid input: payload.amount: USD allows at most 2 decimals");
  });
});

test("the payment rate limit applies to NATS callers too", async () => {
  const limited = await startTestNode("natslimits", { NATS_URL, NATS_SUBJECT_PREFIX: `${PREFIX}l`, RATE_LIMITS: "on", RATE_MONEY_PER_MINUTE: "3" });
  try {
    const walletId = await fundedWallet(limited.api, "USD", "10.00", "nats-limited");
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const h = headers();
      h.set("Authorization", `Bearer ${await tokenFor({ sub: "nats-limited", role: "user" })}`);
      h.set("Idempotency-Key", crypto.randomUUID());
      const reply = await nc.request(`${PREFIX}l.v1.wallets.payments.create`, JSON.stringify({ walletId, amount: "1.00" }), { timeout: 5_000, headers: h });
      statuses.push((JSON.parse(reply.string()) as Reply).status);
    }
    expect(statuses).toEqual([201, 201, 201, 429, 429]);
  } finally {
    await limited.stop();
  }
});
