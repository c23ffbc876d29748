import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Kvm } from "@nats-io/kv";
import { jetstream } from "@nats-io/jetstream";
import { connect, errors, headers, nkeys, type NatsConnection, type NodeConnectionOptions, type Status } from "@nats-io/transport-node";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shardOf } from "../../actors/shards";
import { loadConfig } from "../../src/config";
import { natsConnectOptions } from "../../src/nats/connect";
import { tokenFor } from "../support/auth";
import { startLockedNats, type LockedNats } from "../support/nats-locked";
import { startTestNode, type TestNode } from "../support/node";

/**
 * The bus locked by NATS itself (deploy/nats/coffer.conf), against a real nats-server started
 * with that file: the SERVER refuses whatever a credential is not allowed, so these tests look
 * for its refusals (an authorization error at connect, a permissions violation on publish or
 * subscribe) and never for Coffer's own checks.
 */
const REFUSAL_TIMEOUT_MS = 2_000;
const SHARDS = 4;

let bus: LockedNats;
const open: NatsConnection[] = [];

beforeAll(async () => {
  bus = await startLockedNats();
});
// Each test's connections end with it: a responder left in the queue group would answer the next test.
afterEach(async () => {
  await Promise.all(open.splice(0).map((nc) => nc.close().catch(() => {})));
});
afterAll(async () => {
  await bus?.stop();
});

async function client(opts: Partial<NodeConnectionOptions> = {}): Promise<NatsConnection> {
  const nc = await connect({ servers: bus.url, maxReconnectAttempts: 0, ...opts });
  open.push(nc);
  return nc;
}
const asNode = () => client({ user: bus.node.user, pass: bus.node.pass, name: "test-node" });
const asCaller = () => client({ user: bus.caller.user, pass: bus.caller.pass, inboxPrefix: bus.caller.inboxPrefix, name: "test-caller" });

/** The next status event that matches, or a clear failure after a bounded wait. */
async function nextStatus(nc: NatsConnection, match: (s: Status) => boolean, what: string): Promise<Status> {
  const statuses = nc.status();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${REFUSAL_TIMEOUT_MS} ms`)), REFUSAL_TIMEOUT_MS)));
  const found = (async () => {
    for await (const s of statuses) if (match(s)) return s;
    throw new Error(`status stream ended before ${what}`);
  })();
  found.catch(() => {}); // after a timeout, stop() ends the loop: that is not a second failure
  try {
    return await Promise.race([found, timeout]);
  } finally {
    clearTimeout(timer);
    // status() is typed as a plain AsyncIterable, but it is a QueuedIterator: stop() removes the listener.
    (statuses as { stop?: () => void }).stop?.();
  }
}

/**
 * Publish and wait for the server's "Permissions Violation for Publish" on exactly that subject.
 * Where a node may listen on it, a node subscribed to the same subject then proves nothing was
 * delivered: the server handles the publish before it answers the node's later flush.
 */
async function expectPublishRefused(nc: NatsConnection, subject: string, witness?: NatsConnection): Promise<void> {
  let delivered = 0;
  const spy = witness?.subscribe(subject, {
    callback: (error) => {
      if (!error) delivered++;
    },
  });
  await witness?.flush();
  const refused = nextStatus(
    nc,
    (s) => s.type === "error" && s.error instanceof errors.PermissionViolationError && s.error.operation === "publish" && s.error.subject === subject,
    `publish refusal on ${subject}`,
  );
  nc.publish(subject, JSON.stringify({ command: { type: "wallet.credit", amount: { $bigint: "99999999900" } } }));
  const status = await refused;
  expect((status as { error: Error }).error.message).toContain("Permissions Violation for Publish");
  await witness?.flush();
  spy?.unsubscribe();
  expect(delivered).toBe(0);
}

/** Subscribe and expect the server to close the subscription with a permissions violation. */
async function expectSubscribeRefused(nc: NatsConnection, subject: string, queue?: string): Promise<void> {
  let received = 0;
  const sub = nc.subscribe(subject, {
    queue,
    callback: (error) => {
      if (!error) received++;
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = await Promise.race([
    sub.closed,
    new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), REFUSAL_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (closed === "timeout") sub.unsubscribe();
  expect(closed).toBeInstanceOf(errors.PermissionViolationError);
  const error = closed as InstanceType<typeof errors.PermissionViolationError>;
  expect(error.operation).toBe("subscription");
  expect(error.subject).toBe(subject);
  expect(error.queue).toBe(queue);
  expect(received).toBe(0);
}

describe("connecting", () => {
  test("a client with no credentials cannot connect at all", async () => {
    await expect(connect({ servers: bus.url, maxReconnectAttempts: 0 })).rejects.toBeInstanceOf(errors.AuthorizationError);
  });

  test("a wrong password, or the caller's password under the node's user, is refused", async () => {
    for (const [user, pass] of [
      [bus.node.user, `${bus.node.pass}x`],
      [bus.caller.user, "wrong"],
      [bus.node.user, bus.caller.pass],
      ["nobody", bus.node.pass],
    ] as const) {
      await expect(connect({ servers: bus.url, maxReconnectAttempts: 0, user, pass })).rejects.toBeInstanceOf(errors.AuthorizationError);
    }
  });
});

describe("an API caller's credential (stolen or not) reaches only the public API", () => {
  const wallet = crypto.randomUUID();
  test.each([`coffer.wallet.3.${wallet}`, "coffer.chama.3.x", "coffer.cluster.status.n1", "coffer.events.wallet.credited.x", "_INBOX.someone"])(
    "publishing on %s is refused by the server, and no node receives it",
    async (subject) => {
      await expectPublishRefused(await asCaller(), subject, await asNode());
    },
  );

  test.each(["$KV.coffer_leases.shard.1", "$JS.API.INFO", "$JS.API.STREAM.CREATE.X"])("publishing on %s is refused by the server", async (subject) => {
    await expectPublishRefused(await asCaller(), subject);
  });

  test.each(["coffer.wallet.>", "coffer.chama.>", "coffer.cluster.>", "coffer.v1.>", "coffer.events.>", "$KV.coffer_leases.>", "$JS.API.>", "_INBOX.>", "_INBOX_payroll.>", ">"])(
    "subscribing to %s is refused by the server",
    async (subject) => {
      await expectSubscribeRefused(await asCaller(), subject);
    },
  );

  test.each(["coffer.v1.>", "coffer.v1.wallets.create"])("joining the nodes' queue group coffer-api on %s is refused by the server", async (subject) => {
    await expectSubscribeRefused(await asCaller(), subject, "coffer-api");
  });

  test("a caller that forgets its inbox prefix cannot receive replies: its request is refused", async () => {
    const careless = await client({ user: bus.caller.user, pass: bus.caller.pass });
    const responder = await asNode();
    responder.subscribe("coffer.v1.wallets.get", { queue: "coffer-api", callback: (_e, msg) => void msg.respond("{}") });
    await responder.flush();
    // nats.js reports it as a RequestError whose cause is the server's refusal of its reply inbox.
    const error = await careless.request("coffer.v1.wallets.get", "{}", { timeout: REFUSAL_TIMEOUT_MS }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(errors.RequestError);
    const cause = (error as Error).cause;
    expect(cause).toBeInstanceOf(errors.PermissionViolationError);
    expect((cause as InstanceType<typeof errors.PermissionViolationError>).subject).toStartWith("_INBOX.");
  });

  test("a request on coffer.v1.wallets.get reaches a node's queue group and the node's reply comes back", async () => {
    const node = await asNode();
    const caller = await asCaller();
    const seen: { subject: string; reply: string | undefined }[] = [];
    node.subscribe("coffer.v1.>", {
      queue: "coffer-api",
      callback: (_e, msg) => {
        seen.push({ subject: msg.subject, reply: msg.reply });
        msg.respond(JSON.stringify({ status: 200, body: { echo: msg.string() } }));
      },
    });
    await node.flush();
    const reply = await caller.request("coffer.v1.wallets.get", JSON.stringify({ walletId: wallet }), { timeout: 5_000 });
    expect(reply.json()).toEqual({ status: 200, body: { echo: JSON.stringify({ walletId: wallet }) } });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.reply?.startsWith(`${bus.caller.inboxPrefix}.`)).toBe(true);
  });
});

describe("the node credential can do everything a node does", () => {
  test("create a KV bucket, put, get and list keys (JetStream API, $KV, ordered consumers)", async () => {
    const nc = await asNode();
    const kv = await new Kvm(jetstream(nc)).create(`coffer_permtest`, { history: 1 });
    await kv.put("shard.1", "node-a");
    expect((await kv.get("shard.1"))?.string()).toBe("node-a");
    const keys: string[] = [];
    for await (const k of await kv.keys("shard.*")) keys.push(k);
    expect(keys).toEqual(["shard.1"]);
    await kv.destroy();
  });

  test("commands travel node to node on shard subjects, and cluster status requests are answered", async () => {
    const a = await asNode();
    const b = await asNode();
    b.subscribe("coffer.wallet.3.*", { callback: (_e, msg) => void msg.respond(`ok ${msg.subject}`) });
    b.subscribe("coffer.chama.3.*", { callback: (_e, msg) => void msg.respond(`ok ${msg.subject}`) });
    b.subscribe("coffer.cluster.status.b", { callback: (_e, msg) => void msg.respond("status") });
    await b.flush();
    expect((await a.request(`coffer.wallet.3.${crypto.randomUUID()}`, "{}", { timeout: 5_000 })).string()).toStartWith("ok coffer.wallet.3.");
    expect((await a.request("coffer.chama.3.x", "{}", { timeout: 5_000 })).string()).toBe("ok coffer.chama.3.x");
    expect((await a.request("coffer.cluster.status.b", "", { timeout: 5_000 })).string()).toBe("status");
  });
});

describe("a real Coffer node on the locked bus", () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode("buslock", {
      NATS_URL: bus.url,
      NATS_USER: bus.node.user,
      NATS_PASSWORD: bus.node.pass,
      NATS_SUBJECT_PREFIX: "coffer",
      NODE_ID: `buslock-${crypto.randomUUID().slice(0, 8)}`,
      SHARDS: String(SHARDS),
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  test("answers a caller's API request, and refuses the same caller's raw publish on the wallet's shard subject", async () => {
    const caller = await asCaller();
    const h = headers();
    h.set("Authorization", `Bearer ${await tokenFor()}`);
    h.set("Idempotency-Key", crypto.randomUUID());
    const reply = await caller.request("coffer.v1.wallets.create", JSON.stringify({ ownerId: "bus-owner", asset: "USD" }), { timeout: 10_000, headers: h });
    const created = reply.json<{ status: number; body: { id: string; balance: { posted: string } } }>();
    expect(created.status).toBe(201);
    const walletId = created.body.id;

    // The forged credit from issue 9, sent straight to the shard's owner: the server refuses it.
    const subject = `coffer.wallet.${shardOf(walletId, SHARDS)}.${walletId}`;
    await expectPublishRefused(caller, subject, await asNode());
    const read = await t.api("GET", `/v1/wallets/${walletId}`);
    expect(read.status).toBe(200);
    expect(read.body.balance.posted).toBe("0.00");
  });
});

describe("node credentials in the configuration", () => {
  test("a user needs a password, and a password a user; the messages never carry the secret", () => {
    expect(() => loadConfig({ NATS_USER: "coffer-node" })).toThrow("NATS_USER: needs NATS_PASSWORD or NATS_PASSWORD_FILE");
    expect(() => loadConfig({ NATS_PASSWORD: "s3cr3t-value" })).toThrow("NATS_USER: required");
    let message = "";
    try {
      loadConfig({ NATS_USER: "coffer-node", NATS_PASSWORD: "s3cr3t-value", NATS_PASSWORD_FILE: "/x" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("not both");
    expect(message).not.toContain("s3cr3t-value");
  });

  test("the password is not enumerable on the config, so it never reaches a log line", () => {
    const config = loadConfig({ NATS_URL: "nats://x:4222", NATS_USER: "coffer-node", NATS_PASSWORD: "s3cr3t-value" });
    expect(config.NATS_PASSWORD).toBe("s3cr3t-value");
    expect(JSON.stringify(config, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain("s3cr3t-value");
    expect(Object.keys(config)).not.toContain("NATS_PASSWORD");
  });
});

describe("how a node builds its NATS connection (src/nats/connect.ts)", () => {
  const dir = mkdtempSync(join(tmpdir(), "coffer-nats-secrets-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a password file (with its trailing newline) authenticates the node on the locked server", async () => {
    const file = join(dir, "node-password");
    writeFileSync(file, `${bus.node.pass}\n`);
    const options = await natsConnectOptions(loadConfig({ NATS_URL: `${bus.url}, `, NATS_USER: bus.node.user, NATS_PASSWORD_FILE: file }));
    expect(options.servers).toEqual([bus.url]);
    expect(options.maxReconnectAttempts).toBe(-1);
    expect(JSON.stringify(options)).not.toContain(bus.node.pass);
    const nc = await connect({ ...options, maxReconnectAttempts: 0 });
    open.push(nc);
    await nc.flush();
  });

  test("without a credential the node is refused by the locked server", async () => {
    const options = await natsConnectOptions(loadConfig({ NATS_URL: bus.url }));
    await expect(connect({ ...options, maxReconnectAttempts: 0 })).rejects.toBeInstanceOf(errors.AuthorizationError);
  });

  test("an nkey seed file becomes an nkey authenticator; a bad one fails at start-up without showing its content", async () => {
    const user = nkeys.createUser();
    const good = join(dir, "node.nk");
    writeFileSync(good, `${new TextDecoder().decode(user.getSeed())}\n`);
    const options = await natsConnectOptions(loadConfig({ NATS_URL: bus.url, NATS_NKEY_SEED_FILE: good }));
    const auth = (options.authenticator as (nonce?: string) => { nkey?: string; sig?: string })("nonce");
    expect(auth.nkey).toBe(user.getPublicKey());
    expect(nkeys.fromPublic(user.getPublicKey()).verify(new TextEncoder().encode("nonce"), nkeys.decode(auth.sig!))).toBe(true);

    const bad = join(dir, "bad.nk");
    writeFileSync(bad, "SUnot-a-seed-at-all\n");
    const error = await natsConnectOptions(loadConfig({ NATS_URL: bus.url, NATS_NKEY_SEED_FILE: bad })).catch((e: Error) => e);
    expect((error as Error).message).toBe(`NATS_NKEY_SEED_FILE: ${bad} does not hold a valid nkey seed`);
    const missing = await natsConnectOptions(loadConfig({ NATS_URL: bus.url, NATS_USER: "u", NATS_PASSWORD_FILE: join(dir, "absent") })).catch((e: Error) => e);
    expect((missing as Error).message).toStartWith("NATS_PASSWORD_FILE: cannot read");
  });
});
