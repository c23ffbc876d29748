/**
 * `bun test/bench/lean/request-path.ts`: what one request costs on this machine, in CPU, not wall
 * time (others share the machine: process.cpuUsage counts only this process's work).
 *
 * 1. Closed-loop workloads, LEAN_CONCURRENCY callers for LEAN_SECONDS each, after a warm-up:
 *    - bare: a bare Hono app answering small JSON (the floor any route pays);
 *    - inproc: a payment through the service layer (node.ops.pay: actor, group commit, postgres.js), no HTTP;
 *    - http / http-quiet: the same payment through the node's HTTP app with a bearer token, as an
 *      API client sends it, at LOG_LEVEL=info (the default: one access line a request, written to
 *      a sink here) and at warn;
 *    - edge: the request path alone: the wallet's actor stubbed to answer at once, through the
 *      service layer and through the HTTP app (the difference is what HTTP costs: middleware,
 *      auth, parsing, validation, answering, logging, metrics);
 *    - refusals: 401, 400 and 404 answers; get: GET a wallet (one query).
 *    CPU per request is given as the whole run's mean, and the median and best of its 0.5 s
 *    windows (on a shared machine, windows where others took the cores read high).
 *    LEAN_TRANSPORT=request (default) calls the app's fetch in-process as Bun.serve would (the
 *    server as env, bodies with a content-length); `serve` puts it behind Bun.serve and calls it
 *    with fetch (then the client's CPU and the sockets are in the numbers too).
 * 2. pieces: parts of the request path on their own, in a tight loop: µs per call of each.
 *
 * Env: LEAN_SECONDS (4), LEAN_WARMUP_SECONDS (1), LEAN_CONCURRENCY (16), LEAN_WALLETS (64),
 * LEAN_ONLY (comma-separated subset of bare,inproc,http,http-quiet,edge,refusals,get,pieces), LEAN_TRANSPORT.
 * For a profile: `bun --cpu-prof --cpu-prof-dir=/tmp/prof test/bench/lean/request-path.ts`, then
 * `bun test/bench/lean/profile-summary.ts /tmp/prof/*.cpuprofile` (self and inclusive time).
 */
import { Hono } from "hono";
import { z } from "zod";
import { startNode, type Node } from "../../../src/node";
import { loadConfig } from "../../../src/config";
import { log, setLogLevel } from "../../../lib/log";
import { ADMIN, callerFor, testKeys, tokenFor, TOKEN_SETTINGS } from "../../support/auth";
import { Authenticator } from "../../../src/security/authenticator";
import { ApiKeys } from "../../../src/security/api-keys";
import { createTestDatabase } from "../../support/db";
import { parse, parseJson } from "../../../src/api/input";
import { OPERATIONS } from "../../../src/api/operations";
import { claimOf } from "../../../src/api/wallet-service";
import { redactDeep } from "../../../lib/redact";

const SECONDS = Number(process.env.LEAN_SECONDS ?? 4);
const WARMUP_SECONDS = Number(process.env.LEAN_WARMUP_SECONDS ?? 1);
const CONCURRENCY = Number(process.env.LEAN_CONCURRENCY ?? 16);
const WALLETS = Number(process.env.LEAN_WALLETS ?? 64);
const TRANSPORT = process.env.LEAN_TRANSPORT === "serve" ? "serve" : "request";
const ONLY = (process.env.LEAN_ONLY ?? "").split(",").filter(Boolean);
/** The bench's own output; console.log itself is swapped for a sink while access lines are written. */
const say = console.log.bind(console);
const runs = (part: string) => ONLY.length === 0 || ONLY.includes(part);
const CALLER = callerFor(ADMIN);
const PAYMENT = "0.01";

interface Row {
  name: string;
  ok: number;
  errors: number;
  rps: number;
  cpu_us: number;
  cpu_us_median: number;
  cpu_us_best: number;
  p50_ms: number;
}
const rows: Row[] = [];

/**
 * `concurrency` callers in a closed loop for `seconds`; CPU per acknowledged request. The run is
 * cut into windows of WINDOW_S: on a shared machine a window where others took the cores (and
 * ours waited, or lost its caches) reads high, so the row gives the median and the best window
 * next to the whole run's mean.
 */
const WINDOW_S = 0.5;
async function measure(name: string, attempt: () => Promise<boolean>): Promise<Row> {
  let ok = 0;
  let errors = 0;
  const latencies: number[] = [];
  const windows: number[] = [];
  // The callers keep the clock (a workload with no I/O never lets a timer fire): after each
  // attempt, whichever caller sees a boundary passed closes the window.
  const started = performance.now();
  const measureFrom = started + WARMUP_SECONDS * 1000;
  const measureTo = measureFrom + SECONDS * 1000;
  let phase: "warm" | "measure" | "done" = "warm";
  let okAt0 = 0;
  let errorsAt0 = 0;
  let cpuAt0 = process.cpuUsage();
  let windowEnds = 0;
  let windowOk = 0;
  let windowCpu = process.cpuUsage();
  let okAtEnd = 0;
  let errorsAtEnd = 0;
  let cpuTotal = { user: 0, system: 0 };
  let wallFrom = 0;
  let wallTo = 0;
  const tick = (now: number) => {
    if (phase === "warm" && now >= measureFrom) {
      phase = "measure";
      wallFrom = now;
      okAt0 = windowOk = ok;
      errorsAt0 = errors;
      cpuAt0 = windowCpu = process.cpuUsage();
      windowEnds = now + WINDOW_S * 1000;
    } else if (phase === "measure" && now >= windowEnds) {
      const cpu = process.cpuUsage(windowCpu);
      if (ok > windowOk) windows.push((cpu.user + cpu.system) / (ok - windowOk));
      windowOk = ok;
      windowCpu = process.cpuUsage();
      windowEnds = now + WINDOW_S * 1000;
      if (now >= measureTo) {
        phase = "done";
        wallTo = now;
        okAtEnd = ok;
        errorsAtEnd = errors;
        cpuTotal = process.cpuUsage(cpuAt0);
      }
    }
  };
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (phase !== "done") {
        const t0 = performance.now();
        let good = false;
        try {
          good = await attempt();
        } catch (error) {
          if (errors === 0) console.error(`${name}: ${String(error)}`);
        }
        const t1 = performance.now();
        if (good) {
          ok++;
          if (phase === "measure") latencies.push(t1 - t0);
        } else errors++;
        tick(t1);
      }
    }),
  );
  const wall = (wallTo - wallFrom) / 1000;
  const done = okAtEnd - okAt0;
  const failed = errorsAtEnd - errorsAt0;
  latencies.sort((a, b) => a - b);
  windows.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  const row = {
    name,
    ok: done,
    errors: failed,
    rps: Math.round(done / wall),
    cpu_us: round((cpuTotal.user + cpuTotal.system) / Math.max(1, done)),
    cpu_us_median: round(windows[Math.floor(windows.length / 2)] ?? NaN),
    cpu_us_best: round(windows[0] ?? NaN),
    p50_ms: Math.round((latencies[Math.floor(latencies.length / 2)] ?? NaN) * 100) / 100,
  };
  rows.push(row);
  say(`  ${name.padEnd(52)} ${String(row.rps).padStart(7)} req/s  CPU us/req: mean ${row.cpu_us}, median ${row.cpu_us_median}, best ${row.cpu_us_best}  p50 ${row.p50_ms} ms${failed ? `, ${failed} failed` : ""}`);
  return row;
}

/** µs per call of `fn` in a tight loop (CPU time, after a warm-up). */
async function piece(name: string, fn: () => unknown, iterations = 20_000): Promise<void> {
  for (let i = 0; i < Math.min(2_000, iterations); i++) await fn();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) await fn();
  const cpu = process.cpuUsage(cpu0);
  say(`  ${name.padEnd(58)} ${((cpu.user + cpu.system) / iterations).toFixed(2).padStart(8)} us`);
}

type Fetch = (req: Request) => Response | Promise<Response>;

/** Something that answers a Request: in-process (`app.request`), or over a socket (Bun.serve + fetch). */
function transport(fetch: Fetch): { call: (path: string, init: RequestInit) => Promise<Response>; stop: () => Promise<void> } {
  if (TRANSPORT === "request") {
    // As Bun.serve calls it: the server as env (the peer's address comes from it), and a body with
    // its content-length, as every HTTP/1.1 client sends one.
    const server = { requestIP: () => ({ address: "127.0.0.1", family: "IPv4", port: 40000 }) };
    return {
      call: async (path, init) => {
        const headers = new Headers(init.headers);
        if (typeof init.body === "string") headers.set("content-length", String(Buffer.byteLength(init.body)));
        return (fetch as (req: Request, env: unknown) => Response | Promise<Response>)(new Request(`http://localhost${path}`, { ...init, headers }), server);
      },
      stop: async () => {},
    };
  }
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch });
  const base = `http://127.0.0.1:${server.port}`;
  return { call: (path, init) => globalThis.fetch(`${base}${path}`, init), stop: () => server.stop(true) };
}

async function main(): Promise<void> {
  console.log(`request path: ${SECONDS}s per workload after ${WARMUP_SECONDS}s warm-up, ${CONCURRENCY} callers, ${WALLETS} wallets, transport ${TRANSPORT}, bun ${Bun.version}, ${navigator.hardwareConcurrency} cores`);

  if (runs("bare")) {
    const bare = new Hono();
    bare.get("/ping", (c) => c.json({ ok: true, at: 1 }));
    bare.post("/v1/wallets/:walletId/payments", async (c) => c.json({ id: c.req.param("walletId"), ...(await c.req.json()) }, 201));
    const t = transport(bare.fetch);
    await measure("bare hono GET /ping", async () => (await t.call("/ping", {})).status === 200);
    const body = JSON.stringify({ amount: PAYMENT });
    await measure("bare hono POST json (reads body)", async () => {
      const res = await t.call(`/v1/wallets/${crypto.randomUUID()}/payments`, { method: "POST", headers: { "content-type": "application/json" }, body });
      await res.text();
      return res.status === 201;
    });
    await t.stop();
  }

  if (!["inproc", "http", "http-quiet", "edge", "refusals", "get", "pieces"].some(runs)) return print();

  const db = await createTestDatabase("lean");
  let node: Node | undefined;
  try {
    const config = loadConfig({ JWT_KEYS_FILE: (await testKeys()).file, ...process.env, RATE_LIMITS: "off", MONITORING: "off", NATS_URL: undefined, DATABASE_URL: db.url, DB_POOL_MAX: "8" });
    node = await startNode(config, db.url);
    const wallets: string[] = [];
    for (let i = 0; i < WALLETS; i++) {
      const created = await node.ops.createWallet(CALLER, `lean-open-${i}`, { ownerId: `lean-${i}`, asset: "USD" });
      if (created.status !== 201) throw new Error(`open: ${JSON.stringify(created.body)}`);
      const id = created.body.id as string;
      const credited = await node.ops.credit(CALLER, `lean-fund-${i}`, id, { amount: "1000000" });
      if (credited.status !== 201) throw new Error(`fund: ${JSON.stringify(credited.body)}`);
      wallets.push(id);
    }
    const pick = () => wallets[Math.floor(Math.random() * wallets.length)]!;
    const token = await tokenFor(ADMIN);
    const body = JSON.stringify({ amount: PAYMENT, reference: "lean" });

    if (runs("inproc")) {
      setLogLevel("info");
      await measure("payment, service layer (no HTTP)", async () => (await node!.ops.pay(CALLER, crypto.randomUUID(), pick(), { amount: PAYMENT, reference: "lean" })).status === 201);
    }
    const t = transport(node.http.fetch as Fetch);
    const pay = async () => {
      const res = await t.call(`/v1/wallets/${pick()}/payments`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID(), authorization: `Bearer ${token}` },
        body,
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`${res.status} ${text.slice(0, 200)}`);
      return true;
    };
    if (runs("http")) {
      setLogLevel("info");
      // The access lines would flood the terminal (and measure it): they go to a sink, built as usual.
      const original = console.log;
      let lines = 0;
      console.log = () => void lines++;
      try {
        await measure("payment, HTTP app, LOG_LEVEL=info (access line)", pay);
      } finally {
        console.log = original;
      }
      if (lines === 0) console.log("  (no access lines were written)");
    }
    if (runs("http-quiet")) {
      setLogLevel("warn");
      await measure("payment, HTTP app, LOG_LEVEL=warn", pay);
    }
    if (runs("edge")) {
      // The request path alone: the wallet's actor answers at once (no mailbox, no commit, no
      // database), everything before it (service checks, fingerprint) and around it runs as usual.
      setLogLevel("warn");
      const service = node.ops as unknown as { router: { send: (to: unknown, envelope: { command: { journalId?: string; amount?: bigint } }) => Promise<unknown> } };
      const router = service.router;
      if (typeof router?.send !== "function") throw new Error("edge: WalletService has no `router` to stub any more; update the bench");
      const at = new Date().toISOString();
      service.router = {
        send: async (to, envelope) => ({
          status: 201,
          body: { id: envelope.command.journalId, walletId: (to as { id: string }).id, kind: "payment", asset: "USD", amount: "0.01", reference: "lean", balance: { available: "999999.99" }, createdAt: at },
        }),
      };
      try {
        await measure("payment, service layer, actor stubbed", async () => (await node!.ops.pay(CALLER, crypto.randomUUID(), pick(), { amount: PAYMENT, reference: "lean" })).status === 201);
        await measure("payment, HTTP app, actor stubbed, LOG_LEVEL=warn", pay);
        setLogLevel("info");
        const original = console.log;
        console.log = () => {};
        try {
          await measure("payment, HTTP app, actor stubbed, LOG_LEVEL=info", pay);
        } finally {
          console.log = original;
        }
        setLogLevel("warn");
      } finally {
        service.router = router;
      }
    }
    if (runs("refusals")) {
      // What a refused request costs: no credential (401), a body the schema refuses (400), no such route (404).
      setLogLevel("warn");
      await measure("401 without a credential", async () => {
        const res = await t.call("/v1/wallets", {});
        await res.text();
        return res.status === 401;
      });
      await measure("400 a body the schema refuses", async () => {
        const res = await t.call(`/v1/wallets/${pick()}/payments`, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID(), authorization: `Bearer ${token}` }, body: '{"amount":1}' });
        await res.text();
        return res.status === 400;
      });
      await measure("404 no such route, with a token", async () => {
        const res = await t.call("/v1/nothing", { headers: { authorization: `Bearer ${token}` } });
        await res.text();
        return res.status === 404;
      });
    }
    if (runs("get")) {
      setLogLevel("warn");
      await measure("GET wallet, HTTP app, LOG_LEVEL=warn", async () => {
        const res = await t.call(`/v1/wallets/${pick()}`, { headers: { authorization: `Bearer ${token}` } });
        await res.text();
        return res.status === 200;
      });
    }
    await t.stop();

    if (runs("pieces")) {
      setLogLevel("warn");
      console.log("\npieces of the request path (µs CPU per call):");
      const op = OPERATIONS.find((o) => o.name === "wallets.payments.create")!;
      const walletId = wallets[0]!;
      const authenticator = new Authenticator((await testKeys()).ring, TOKEN_SETTINGS, new ApiKeys(node.db));
      await piece("authenticator.principalFor (token verified before)", () => authenticator.principalFor({ authorization: `Bearer ${token}` }));
      const apiKey = (await new ApiKeys(node.db).create({ name: "lean", subject: "lean-service", permissions: ["payments:write"] }, "lean")).key;
      await piece("authenticator.principalFor (API key, row cached)", () => authenticator.principalFor({ apiKey }));
      await piece("parseJson(body) + depth check", () => parseJson(body, OBJECT_SCHEMA, { optional: true }));
      await piece("zod: payment input schema", () => parse(op.input, { amount: PAYMENT, reference: "lean", walletId }, "body"));
      await piece("idempotency fingerprint (canonical JSON + HMAC)", () => claimOf(node!.vault, CALLER, "k", "wallet.payment", walletId, { amount: 1n, reference: "lean" }));
      const reply = { id: walletId, walletId, kind: "payment", asset: "USD", amount: "0.01", reference: "lean", balance: { available: "999999.99" }, createdAt: new Date().toISOString() };
      await piece("JSON.stringify(reply)", () => JSON.stringify(reply));
      await piece("new Response(json, headers)", () => new Response(JSON.stringify(reply), { status: 201, headers: { "content-type": "application/json" } }));
      await piece("Bun.randomUUIDv7() (request id)", () => Bun.randomUUIDv7());
      await piece("log() below the level", () => log("info", "request", { requestId: "x", method: "POST", route: op.path, status: 201, ms: 1.2, caller: "admin:test-admin" }));
      const fields = { requestId: Bun.randomUUIDv7(), method: "POST", route: op.path, status: 201, ms: 1.2, caller: "admin:test-admin" };
      await piece("redactDeep(access line fields)", () => redactDeep(fields));
      await piece("JSON.stringify(access line) incl. redact + date", () => JSON.stringify({ level: "info", time: new Date().toISOString(), msg: "request", ...redactDeep(fields) }));
      await piece("metrics.http(...)", () => node!.metrics.http("POST", op.path, 201, 0.002));
      await piece("new Request(...) (the client side of app.request)", () => new Request(`http://localhost/v1/wallets/${walletId}/payments`, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": "k", authorization: `Bearer ${token}` }, body }));
      setLogLevel("info");
      const original = console.log;
      console.log = () => {};
      try {
        await piece("log() of the access line at info (written to a sink)", () => log("info", "request", { requestId: Bun.randomUUIDv7(), method: "POST", route: op.path, status: 201, ms: 1.2, caller: "admin:test-admin" }));
      } finally {
        console.log = original;
        setLogLevel("warn");
      }
    }
  } finally {
    await node?.close();
    await db.drop();
  }
  print();
}

const OBJECT_SCHEMA = z.custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v)).optional();

function print(): void {
  console.log("\n" + JSON.stringify({ transport: TRANSPORT, concurrency: CONCURRENCY, seconds: SECONDS, rows }));
}

await main();
process.exit(0);
