import type Stripe from "stripe";
import { signPayload } from "../../src/integrations/stripe/standin";
import type { Caller } from "../../src/api/wallet-service";
import { startNode, type Node } from "../../src/node";
import { loadConfig } from "../../src/config";
import { setLogLevel } from "../../lib/log";
import { ADMIN, callerFor, testKeys } from "../support/auth";
import { createTestDatabase } from "../support/db";
import { startStripe, TEST_WEBHOOK_SECRET } from "../support/stripe";
import { type Attempt, ErrorSamples, inParallel, percentile, runFor } from "./measure";

/**
 * The webhook-intake workload of `bun run bench`: signed Stripe events per second through
 * `POST /v1/webhooks/stripe`, as Stripe sends them. Each event is a `payment_intent.succeeded` for
 * a deposit that exists (made through Coffer, its PaymentIntent paid at the Stripe stand-in), with
 * an event id of its own (no duplicates: each is verified, stored and processed), the body as
 * Stripe writes it (pretty JSON) and a `Stripe-Signature` made as Stripe makes it (HMAC-SHA256 over
 * `<t>.<body>`). The first event of each deposit credits its wallet; the rest find it credited.
 * What is measured is the intake: verified and stored (durable) before the 200. Processing runs
 * behind it on the same node; how long the backlog takes to drain is reported next to it.
 */
export interface IntakeSetup {
  /** Each deposit's paid PaymentIntent, serialised once, as events carry it. */
  intents: string[];
  deposits: string[];
}

/** Make `count` deposits into `wallets` and have their card holders pay them at the stand-in. */
export async function setupIntake(node: Node, stripe: Stripe, caller: Caller, wallets: string[], count: number, concurrency: number): Promise<IntakeSetup> {
  const intents: string[] = [];
  const deposits: string[] = [];
  await inParallel(Array.from({ length: count }, (_, i) => i), concurrency, async (i) => {
    const made = await node.deposits.create(caller, `bench-deposit-${i}`, wallets[i % wallets.length]!, { amount: "10.00" });
    if (made.status !== 201) throw new Error(`deposit failed: ${made.status} ${JSON.stringify(made.body)}`);
    const pi = await stripe.paymentIntents.confirm((made.body.stripe as { paymentIntentId: string }).paymentIntentId, { payment_method: "pm_card_visa" });
    intents.push(JSON.stringify(pi, null, 2));
    deposits.push(made.body.id as string);
  });
  return { intents, deposits };
}

/** One signed event POSTed per attempt, a fresh event id each time, round the deposits. */
export function webhookIntake(baseUrl: string, setup: IntakeSetup, secret: string, apiVersion: string): (errors: ErrorSamples) => Attempt {
  const run = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  let n = 0;
  return (errors) => async () => {
    const i = n++;
    const body = `{
  "id": "evt_bench${run}${i}",
  "object": "event",
  "api_version": "${apiVersion}",
  "created": ${Math.floor(Date.now() / 1000)},
  "data": {
    "object": ${setup.intents[i % setup.intents.length]!.replaceAll("\n", "\n    ")}
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": { "id": null, "idempotency_key": null },
  "type": "payment_intent.succeeded"
}`;
    const res = await fetch(`${baseUrl}/v1/webhooks/stripe`, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": signPayload(body, secret), "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" },
      body,
    });
    const text = await res.text();
    if (res.status === 200) return true;
    errors.add(`${res.status} ${text.slice(0, 120)}`);
    return false;
  };
}

/**
 * The webhook part of `bun run bench` (BENCH_ONLY=webhooks): unlike the payment parts, the node
 * runs in this process next to the callers (the intake needs the node's Stripe harness and its
 * workers' idle signals), so its numbers include the callers' CPU. Returns its JSON.
 */
export async function webhooksPart(o: { seconds: number; warmup: number; concurrency: number }): Promise<Record<string, unknown>> {
  setLogLevel("warn");
  const deposits = Math.floor(Number(process.env.BENCH_DEPOSITS || 200));
  const caller = callerFor(ADMIN);
  const db = await createTestDatabase("benchhooks");
  const stripe = await startStripe();
  let node: Node | undefined;
  let server: ReturnType<typeof Bun.serve> | undefined;
  try {
    const config = loadConfig({ JWT_KEYS_FILE: (await testKeys()).file, RATE_LIMITS: "off", DB_POOL_MAX: "10", ...process.env, ...stripe.env, NATS_URL: undefined, DATABASE_URL: db.url });
    node = await startNode(config, db.url);
    server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: node.http.fetch });
    const baseUrl = `http://127.0.0.1:${server.port}`;
    const wallets: string[] = [];
    await inParallel(Array.from({ length: Math.min(100, deposits) }, (_, i) => i), o.concurrency, async (i) => {
      const created = await node!.ops.createWallet(caller, `hooks-open-${i}`, { ownerId: `hooks-${i}`, asset: "USD" });
      if (created.status !== 201) throw new Error(`wallet create failed: ${created.status} ${JSON.stringify(created.body)}`);
      wallets.push(created.body.id as string);
    });
    const intake = await setupIntake(node, stripe.client, caller, wallets, deposits, o.concurrency);
    console.log("");
    console.log(`webhook intake (node in the bench process): ${deposits} deposits made and paid at the Stripe stand-in; ${o.concurrency} callers POST signed payment_intent.succeeded events`);
    const make = webhookIntake(baseUrl, intake, TEST_WEBHOOK_SECRET, stripe.standin.apiVersion);
    await runFor(o.warmup, o.concurrency, make(new ErrorSamples()), new ErrorSamples());
    const errors = new ErrorSamples();
    const measured = await runFor(o.seconds, o.concurrency, make(errors), errors);
    const drainStarted = performance.now();
    const drained = (await node.stripe!.events.idle(300_000)) && (await node.depositSaga.idle(300_000));
    const drain_s = (performance.now() - drainStarted) / 1000;
    const [counts] = await node.db`select (select count(*) from stripe_events)::int as stored,
      (select count(*) from journals where kind = 'deposit')::int as credits, (select count(distinct source_id) from journals where kind = 'deposit')::int as credited`;
    const rate = measured.ok / measured.seconds;
    const out = {
      events_per_s: Math.round(rate),
      ok: measured.ok,
      errors: measured.errors,
      p50_ms: Math.round(percentile(measured.latencies_ms, 50) * 100) / 100,
      p99_ms: Math.round(percentile(measured.latencies_ms, 99) * 100) / 100,
      stored: counts!.stored,
      backlog_drained_s: drained ? Math.round(drain_s * 10) / 10 : null,
      deposits_credited: counts!.credited,
      credits: counts!.credits,
      credited_once: counts!.credits === counts!.credited,
    };
    for (const e of errors.list()) console.log(`  webhook intake: ${e}`);
    console.log(`  ${out.events_per_s} events/s, p50 ${out.p50_ms} p99 ${out.p99_ms} ms, ${out.errors} errors; ${out.stored} stored, backlog ${drained ? `drained in ${drain_s.toFixed(1)} s` : "NOT DRAINED"}; ${out.deposits_credited}/${deposits} deposits credited, ${out.credits} credits`);
    return out;
  } finally {
    await server?.stop(true);
    await node?.close();
    await stripe.stop();
    await db.drop();
  }
}
