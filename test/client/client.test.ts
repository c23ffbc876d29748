import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Socket, TCPSocketListener } from "bun";
import { CofferApiError, CofferNetworkError, createClient, type CofferClient, type OperationName } from "../../client";
import { renderRoutes, ROUTES_FILE } from "../../client/generate-routes";
import { createNatsClient } from "../../client/nats";
import { ADMIN, tokenFor } from "../support/auth";
import { deleteClusterState, NATS_URL } from "../support/nats";
import { startTestNode, type TestNode } from "../support/node";

/**
 * The typed client (client/) against a real node: its types come from the operation table, problems
 * come back as CofferApiError, and a call that changes something keeps ONE Idempotency-Key through
 * every retry, so a connection cut after the commit costs a retry, never a second payment.
 */
let t: TestNode;
let coffer: CofferClient;
beforeAll(async () => {
  t = await startTestNode("client");
  coffer = createClient({ baseUrl: t.baseUrl, token: () => tokenFor(ADMIN) });
});
afterAll(() => t.stop());

const WALLET = "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Short pauses between attempts, so the retry tests run in milliseconds. */
const FAST = { retryDelayMs: 2, maxRetryDelayMs: 10 };

async function fundedWallet(client: CofferClient, amount: string): Promise<string> {
  const wallet = await client.wallets.create({ ownerId: "client-owner", asset: "USD" });
  await client.wallets.credits.create({ walletId: wallet.id, amount, reference: "topup" });
  return wallet.id;
}

async function kindsOf(walletId: string): Promise<string[]> {
  const page = await coffer.wallets.transactions.list({ walletId, limit: 200 });
  return page.items.map((item) => item.kind);
}

/**
 * Never called: `bun run typecheck` checks it. Each marked line must be a type error, so the
 * client's types really are the table's (a wrong field, a number for an amount, a missing path
 * parameter, an unknown operation, an unknown error code).
 */
export async function typesComeFromTheTable(client: CofferClient, error: CofferApiError): Promise<void> {
  // @ts-expect-error amounts are decimal strings, never numbers
  await client.wallets.payments.create({ walletId: WALLET, amount: 2.5 });
  // @ts-expect-error a field the operation does not take
  await client.wallets.payments.create({ walletId: WALLET, amount: "2.50", memo: "lunch" });
  // @ts-expect-error the path parameter is required
  await client.wallets.payments.create({ amount: "2.50" });
  // @ts-expect-error no operation has this name
  await client.call("wallets.payments.delete", { walletId: WALLET });
  // @ts-expect-error parking a chama withdrawal takes a note, not a reason
  await client.chamas.withdrawals.park({ chamaId: WALLET, withdrawalId: WALLET, reason: "why" });
  const wallet = await client.call("wallets.get", { walletId: WALLET });
  const available: string = wallet.balance.available;
  // @ts-expect-error the answer has no such field
  void wallet.overdraft;
  // @ts-expect-error codes are the closed set of lib/errors.ts
  if (error.code === "NO_SUCH_CODE") return;
  const name: OperationName = "api-keys.rotate";
  await client.apiKeys.rotate({ keyId: WALLET, overlapSeconds: 60 });
  await client.admin.cluster();
  void [available, name];
}

describe("the typed client against a node", () => {
  test("creates a wallet, credits it, pays, reads it and lists its transactions", async () => {
    const wallet = await coffer.wallets.create({ ownerId: "client-owner", asset: "USD" });
    expect(wallet.id).toMatch(UUID);
    expect(wallet.balance.available).toBe("0.00");
    await coffer.wallets.credits.create({ walletId: wallet.id, amount: "10.00", reference: "topup-1" });
    const paid = await coffer.wallets.payments.create({ walletId: wallet.id, amount: "2.50", reference: "order-1" });
    expect(paid.balance.available).toBe("7.50");
    const read = await coffer.call("wallets.get", { walletId: wallet.id });
    expect(read.balance).toEqual({ posted: "7.50", held: "0.00", available: "7.50" });
    const page = await coffer.wallets.transactions.list({ walletId: wallet.id, limit: 10 });
    expect(page.items.map((item) => [item.kind, item.amount, item.reference])).toEqual([
      ["payment", "-2.50", "order-1"],
      ["credit", "10.00", "topup-1"],
    ]);
    expect(page.nextCursor).toBeNull();
  });

  test("a problem comes back as a CofferApiError with its code, and is not retried", async () => {
    const walletId = await fundedWallet(coffer, "1.00");
    const sent: string[] = [];
    const counting = createClient({
      baseUrl: t.baseUrl,
      token: () => tokenFor(ADMIN),
      fetch: (url, init) => {
        sent.push(new Headers(init.headers).get("idempotency-key") ?? "");
        return fetch(url, init);
      },
    });
    const error = await counting.wallets.payments.create({ walletId, amount: "5.00" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CofferApiError);
    const problem = error as CofferApiError;
    expect({ status: problem.status, code: problem.code, operation: problem.operation, attempts: problem.attempts }).toEqual({
      status: 409,
      code: "INSUFFICIENT_FUNDS",
      operation: "wallets.payments.create",
      attempts: 1,
    });
    expect(problem.requestId).toMatch(UUID);
    expect(problem.idempotencyKey).toBe(sent[0]!);
    expect(sent).toHaveLength(1);
    expect(await kindsOf(walletId)).toEqual(["credit"]);
  });

  test("a validation problem carries its field errors", async () => {
    const walletId = await fundedWallet(coffer, "1.00");
    const error = (await coffer.wallets.payments.create({ walletId, amount: "0.001" }).catch((e: unknown) => e)) as CofferApiError;
    expect(error).toBeInstanceOf(CofferApiError);
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.errors?.map((e) => e.path)).toEqual(["body.amount"]);
  });

  test("a read with no credential is UNAUTHENTICATED", async () => {
    const anonymous = createClient({ baseUrl: t.baseUrl });
    const error = (await anonymous.wallets.get({ walletId: WALLET }).catch((e: unknown) => e)) as CofferApiError;
    expect(error).toBeInstanceOf(CofferApiError);
    expect({ status: error.status, code: error.code }).toEqual({ status: 401, code: "UNAUTHENTICATED" });
  });
});

describe("a connection cut after the commit", () => {
  test("is retried with the same Idempotency-Key and pays once", async () => {
    const walletId = await fundedWallet(coffer, "10.00");
    let cut = false;
    const proxy = startCuttingProxy(new URL(t.baseUrl), (request) => {
      if (cut || !isPayment(request)) return false;
      cut = true;
      return true;
    });
    try {
      let attempts = 0;
      const viaProxy = createClient({
        baseUrl: proxy.url,
        token: () => tokenFor(ADMIN),
        ...FAST,
        fetch: (url, init) => {
          attempts++;
          return fetch(url, init);
        },
      });
      const paid = await viaProxy.wallets.payments.create({ walletId, amount: "2.50", reference: "cut-once" });

      expect(proxy.cuts).toBe(1);
      expect(attempts).toBe(2);
      const payments = proxy.seen.filter(isPayment);
      expect(payments).toHaveLength(2);
      expect(payments[0]!.idempotencyKey).toMatch(UUID);
      expect(payments[1]!.idempotencyKey).toBe(payments[0]!.idempotencyKey);
      expect(paid.balance.available).toBe("7.50");
      expect((await coffer.wallets.get({ walletId })).balance).toEqual({ posted: "7.50", held: "0.00", available: "7.50" });
      expect(await kindsOf(walletId)).toEqual(["payment", "credit"]);
      const [row] = await t.node.db`select count(*)::int as n from journals where reference = 'cut-once'`;
      expect(row!.n).toBe(1);
    } finally {
      proxy.stop();
    }
  });
});

describe("retries", () => {
  test("two 503s then a success make three attempts with one key", async () => {
    const fake = fakeNode([problemResponse(503, "UNAVAILABLE"), problemResponse(503, "OVERLOADED"), walletResponse(201)]);
    try {
      const client = createClient({ baseUrl: fake.url, token: "t", ...FAST });
      const paid = await client.wallets.payments.create({ walletId: WALLET, amount: "1.00" });
      expect(paid.id).toBe(WALLET);
      expect(fake.keys).toHaveLength(3);
      expect(fake.keys[0]).toMatch(UUID);
      expect(new Set(fake.keys).size).toBe(1);
    } finally {
      fake.stop();
    }
  });

  test("the caller's own idempotency key is sent on every attempt", async () => {
    const fake = fakeNode([problemResponse(503, "UNAVAILABLE"), walletResponse(201)]);
    try {
      const client = createClient({ baseUrl: fake.url, token: "t", ...FAST });
      await client.wallets.payments.create({ walletId: WALLET, amount: "1.00" }, { idempotencyKey: "order-7-payment" });
      expect(fake.keys).toEqual(["order-7-payment", "order-7-payment"]);
    } finally {
      fake.stop();
    }
  });

  test("an attempt that times out is retried with the same key", async () => {
    const fake = fakeNode(["hang", walletResponse(201)]);
    try {
      const client = createClient({ baseUrl: fake.url, token: "t", attemptTimeoutMs: 200, ...FAST });
      await client.wallets.freeze({ walletId: WALLET });
      expect(fake.keys).toHaveLength(2);
      expect(fake.keys[1]).toBe(fake.keys[0]!);
    } finally {
      fake.stop();
    }
  });

  test("a 429 waits for Retry-After before the next attempt", async () => {
    const fake = fakeNode([problemResponse(429, "RATE_LIMITED", { "retry-after": "1" }), walletResponse(200)]);
    try {
      const client = createClient({ baseUrl: fake.url, token: "t", ...FAST });
      await client.wallets.get({ walletId: WALLET });
      expect(fake.times).toHaveLength(2);
      expect(fake.times[1]! - fake.times[0]!).toBeGreaterThanOrEqual(950);
    } finally {
      fake.stop();
    }
  });

  test("a Retry-After beyond the bound ends the call at once with the wait in the error", async () => {
    const fake = fakeNode([problemResponse(429, "RATE_LIMITED", { "retry-after": "60" })]);
    try {
      const client = createClient({ baseUrl: fake.url, token: "t", ...FAST });
      const error = (await client.wallets.get({ walletId: WALLET }).catch((e: unknown) => e)) as CofferApiError;
      expect(error).toBeInstanceOf(CofferApiError);
      expect({ code: error.code, retryAfter: error.retryAfter, attempts: error.attempts }).toEqual({ code: "RATE_LIMITED", retryAfter: 60, attempts: 1 });
    } finally {
      fake.stop();
    }
  });

  test.each([
    [400, "VALIDATION_FAILED"],
    [403, "FORBIDDEN"],
    [404, "WALLET_NOT_FOUND"],
    [409, "INSUFFICIENT_FUNDS"],
    [422, "IDEMPOTENCY_CONFLICT"],
    [500, "INTERNAL"],
  ] as const)("a %i problem is answered at once, without a retry", async (status, code) => {
    const fake = fakeNode([problemResponse(status, code), walletResponse(201)]);
    try {
      const client = createClient({ baseUrl: fake.url, token: "t", ...FAST });
      const error = (await client.wallets.payments.create({ walletId: WALLET, amount: "1.00" }).catch((e: unknown) => e)) as CofferApiError;
      expect(error).toBeInstanceOf(CofferApiError);
      expect({ status: error.status, code: error.code }).toEqual({ status, code });
      expect(fake.keys).toHaveLength(1);
    } finally {
      fake.stop();
    }
  });

  test("always 503 ends after maxAttempts with the last problem", async () => {
    const fake = fakeNode(Array.from({ length: 10 }, () => problemResponse(503, "UNAVAILABLE")));
    try {
      const client = createClient({ baseUrl: fake.url, token: "t", maxAttempts: 4, ...FAST });
      const error = (await client.wallets.payments.create({ walletId: WALLET, amount: "1.00" }).catch((e: unknown) => e)) as CofferApiError;
      expect({ code: error.code, attempts: error.attempts }).toEqual({ code: "UNAVAILABLE", attempts: 4 });
      expect(fake.keys).toHaveLength(4);
      expect(error.idempotencyKey).toBe(fake.keys[0]!);
    } finally {
      fake.stop();
    }
  });

  test("no node listening ends after maxAttempts with a CofferNetworkError that names the key", async () => {
    const closed = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    const url = closed.url.href;
    await closed.stop(true);
    const client = createClient({ baseUrl: url, token: "t", maxAttempts: 3, ...FAST });
    const error = (await client.wallets.payments.create({ walletId: WALLET, amount: "1.00" }, { idempotencyKey: "k-1" }).catch((e: unknown) => e)) as CofferNetworkError;
    expect(error).toBeInstanceOf(CofferNetworkError);
    expect({ attempts: error.attempts, idempotencyKey: error.idempotencyKey }).toEqual({ attempts: 3, idempotencyKey: "k-1" });
  });

  test("the deadline ends the retries before maxAttempts", async () => {
    const fake = fakeNode(Array.from({ length: 10 }, () => problemResponse(503, "UNAVAILABLE")));
    try {
      const client = createClient({ baseUrl: fake.url, token: "t", maxAttempts: 10, retryDelayMs: 40, maxRetryDelayMs: 40, deadlineMs: 100 });
      const error = (await client.wallets.payments.create({ walletId: WALLET, amount: "1.00" }).catch((e: unknown) => e)) as CofferApiError;
      expect(error.code).toBe("UNAVAILABLE");
      expect(fake.keys.length).toBeGreaterThanOrEqual(2);
      expect(fake.keys.length).toBeLessThan(10);
    } finally {
      fake.stop();
    }
  });
});

describe("over NATS", () => {
  const PREFIX = `cofferclient${crypto.randomUUID().slice(0, 8)}`;
  let n: TestNode;
  let nc: NatsConnection;
  beforeAll(async () => {
    n = await startTestNode("client-nats", { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX });
    nc = await connect({ servers: NATS_URL });
  });
  afterAll(async () => {
    await nc.drain();
    await n.stop();
    await deleteClusterState(PREFIX, `${PREFIX}l`);
  });

  test("the same payment over NATS: one interface, the same answers as REST", async () => {
    const overNats = createNatsClient(nc, { prefix: PREFIX, token: () => tokenFor(ADMIN) });
    const overRest = createClient({ baseUrl: n.baseUrl, token: () => tokenFor(ADMIN) });
    const walletId = await fundedWallet(overNats, "10.00");
    const paid = await overNats.wallets.payments.create({ walletId, amount: "2.50", reference: "nats-1" });
    expect(paid.balance.available).toBe("7.50");
    expect(await overNats.wallets.get({ walletId })).toEqual(await overRest.wallets.get({ walletId }));
    const error = (await overNats.wallets.payments.create({ walletId, amount: "100.00" }).catch((e: unknown) => e)) as CofferApiError;
    expect(error).toBeInstanceOf(CofferApiError);
    expect({ status: error.status, code: error.code, attempts: error.attempts }).toEqual({ status: 409, code: "INSUFFICIENT_FUNDS", attempts: 1 });
  });

  test("no reply and a 503 are retried with the same key", async () => {
    const fakePrefix = `${PREFIX}fake`;
    const keys: string[] = [];
    const sub = nc.subscribe(`${fakePrefix}.v1.>`, {
      callback: (_error, msg) => {
        keys.push(msg.headers?.get("Idempotency-Key") ?? "");
        if (keys.length === 1) return; // no reply: the attempt times out
        const reply = keys.length === 2 ? { status: 503, body: { code: "UNAVAILABLE", status: 503, detail: "try again" } } : { status: 201, body: { id: WALLET } };
        msg.respond(JSON.stringify(reply));
      },
    });
    try {
      const client = createNatsClient(nc, { prefix: fakePrefix, token: "t", attemptTimeoutMs: 200, ...FAST });
      const paid = await client.wallets.payments.create({ walletId: WALLET, amount: "1.00" });
      expect(paid.id).toBe(WALLET);
      expect(keys).toHaveLength(3);
      expect(keys[0]).toMatch(UUID);
      expect(new Set(keys).size).toBe(1);
    } finally {
      sub.unsubscribe();
    }
  });
});

describe("the client's own files", () => {
  test("client/routes.ts is what `bun run client:routes` writes from the table today", async () => {
    expect(await Bun.file(ROUTES_FILE).text()).toBe(renderRoutes());
  });

  test("at run time the client loads nothing outside client/ but the NATS library", async () => {
    const transpiler = new Bun.Transpiler({ loader: "ts" });
    const seen = new Set<string>();
    const outside: string[] = [];
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const { path } of transpiler.scanImports(await Bun.file(file).text())) {
        if (path.startsWith("./")) await visit(new URL(`${path}.ts`, `file://${file}`).pathname);
        else if (path !== "@nats-io/transport-node") outside.push(`${file}: ${path}`);
      }
    };
    const dir = new URL("../../client/", import.meta.url).pathname;
    await visit(`${dir}index.ts`);
    await visit(`${dir}nats.ts`);
    expect(outside).toEqual([]);
    expect([...seen].every((file) => file.startsWith(dir))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// A TCP proxy that can cut a connection after the node has answered, and fakes of a node.

interface SeenRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
}

function isPayment(request: SeenRequest): boolean {
  return request.method === "POST" && /^\/v1\/wallets\/[^/]+\/payments$/.test(request.path);
}

interface Connection {
  upstream: Socket<undefined> | undefined;
  /** What the client sent before the node's side was connected. */
  pending: Buffer[];
  /** Bytes of the client's stream not yet read as a whole request. */
  unread: string;
  /** The request just forwarded is to be cut: drop the client as the node's answer starts. */
  cutOnAnswer: boolean;
}

/**
 * Relays 127.0.0.1 connections to `target`, reading the HTTP requests that pass. For a request
 * `cut` picks, it forwards the request, waits until the node's answer starts to come back (so the
 * node has committed) and then closes the client's connection without relaying a byte of it.
 */
function startCuttingProxy(target: URL, cut: (request: SeenRequest) => boolean) {
  const seen: SeenRequest[] = [];
  let cuts = 0;
  const listener: TCPSocketListener<Connection> = Bun.listen<Connection>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        client.data = { upstream: undefined, pending: [], unread: "", cutOnAnswer: false };
        Bun.connect({
          hostname: target.hostname,
          port: Number(target.port),
          socket: {
            open(upstream) {
              client.data.upstream = upstream;
              for (const chunk of client.data.pending) upstream.write(chunk);
              client.data.pending = [];
            },
            data(upstream, chunk) {
              if (client.data.cutOnAnswer) {
                cuts++;
                client.terminate();
                upstream.terminate();
                return;
              }
              client.write(chunk);
            },
            close() {
              client.end();
            },
            error() {
              client.end();
            },
          },
        }).catch(() => client.end());
      },
      data(client, chunk) {
        client.data.unread += chunk.toString("latin1");
        for (const request of completeRequests(client.data)) {
          seen.push(request);
          if (cut(request)) client.data.cutOnAnswer = true;
        }
        if (client.data.upstream) client.data.upstream.write(chunk);
        else client.data.pending.push(chunk);
      },
      close(client) {
        client.data.upstream?.end();
      },
    },
  });
  return {
    url: `http://127.0.0.1:${listener.port}`,
    seen,
    get cuts() {
      return cuts;
    },
    stop: () => listener.stop(true),
  };
}

/** The whole requests at the head of the connection's unread bytes (bounded: a request is at most 64 KiB here). */
function completeRequests(connection: Connection): SeenRequest[] {
  const requests: SeenRequest[] = [];
  for (let i = 0; i < 100; i++) {
    const end = connection.unread.indexOf("\r\n\r\n");
    if (end < 0) break;
    const [requestLine = "", ...headerLines] = connection.unread.slice(0, end).split("\r\n");
    const header = (name: string) => headerLines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
    if (header("transfer-encoding")) throw new Error("the proxy reads Content-Length bodies only");
    const total = end + 4 + Number(header("content-length") ?? 0);
    if (connection.unread.length < total) break;
    const [method = "", path = ""] = requestLine.split(" ");
    requests.push({ method, path, idempotencyKey: header("idempotency-key") });
    connection.unread = connection.unread.slice(total);
  }
  return requests;
}

type Scripted = Response | "hang";

/**
 * A stand-in for a node that answers each request with the next scripted answer ("hang": never
 * answers; the request is released when the fake stops). Records each request's key and time.
 */
function fakeNode(script: Scripted[]) {
  const keys: string[] = [];
  const times: number[] = [];
  const hanging: (() => void)[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(request) {
      keys.push(request.headers.get("idempotency-key") ?? "");
      times.push(performance.now());
      const next = script[keys.length - 1];
      if (next === undefined) return problemResponse(500, "INTERNAL");
      if (next === "hang") return new Promise<Response>((resolve) => hanging.push(() => resolve(new Response(null, { status: 499 }))));
      return next;
    },
  });
  return {
    url: server.url.href,
    keys,
    times,
    stop() {
      for (const release of hanging) release();
      void server.stop(true);
    },
  };
}

function problemResponse(status: number, code: string, headers: Record<string, string> = {}): Response {
  const body = { type: `https://coffer.dev/problems/${code.toLowerCase()}`, title: code, status, code, detail: `a ${code} for the test` };
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/problem+json", ...headers } });
}

function walletResponse(status: number): Response {
  return Response.json({ id: WALLET, balance: { posted: "1.00", held: "0.00", available: "1.00" } }, { status });
}
