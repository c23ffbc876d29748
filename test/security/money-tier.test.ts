import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { OPERATIONS, operationNamed } from "../../src/api/operations";
import type { Operation } from "../../src/api/operation";
import { deleteClusterState, NATS_URL } from "../support/nats";
import { startTestNode, type TestNode } from "../support/node";
import { callNats, callRest, operationFixtures, type Answer, type CallOptions, type Fixture, type Fixtures } from "../support/operations";

/**
 * The money tier (a stricter per-caller limit) applies to every operation that moves money out, on
 * both transports, because src/api/execute.ts applies it from the table's `tier`. The set of such
 * operations is written out here by name, so a new one must be classified on purpose.
 */
const MONEY_OUT = [
  "wallets.payments.create",
  "wallets.withdrawals.create",
  "transfers.create",
  "chamas.contributions.create",
  "chamas.withdrawals.create",
  "chamas.withdrawals.continue",
  "deposits.refunds.create",
];

/** Money-tier calls a caller gets per minute (and per second): tiny, so the suite reaches it at once. */
const LIMIT = 3;
const PAST = 2;

const RUN = crypto.randomUUID().slice(0, 8);
const PREFIX = `coffermoney${RUN}`;

let t: TestNode;
let nc: NatsConnection;
let fixtures: Fixtures;

beforeAll(async () => {
  t = await startTestNode("money-tier", {
    NATS_URL,
    NATS_SUBJECT_PREFIX: PREFIX,
    NODE_ID: `money-${RUN}`,
    RATE_LIMITS: "on",
    RATE_MONEY_PER_SECOND: String(LIMIT),
    RATE_MONEY_PER_MINUTE: String(LIMIT),
    // Everything else out of the way: the suite arranges its fixtures through the same node.
    RATE_IP_PER_SECOND: "100000",
    RATE_IP_PER_MINUTE: "1000000",
    RATE_IP_PER_HOUR: "10000000",
    RATE_CALLER_PER_SECOND: "100000",
    RATE_CALLER_PER_MINUTE: "1000000",
    RATE_CALLER_PER_HOUR: "10000000",
  });
  nc = await connect({ servers: NATS_URL });
  fixtures = operationFixtures(t);
});
afterAll(async () => {
  await nc.drain();
  await t.stop();
  await deleteClusterState(PREFIX);
});

type Transport = "REST" | "NATS";
const TRANSPORTS: Transport[] = ["REST", "NATS"];

function over(transport: Transport, op: Operation, input: Record<string, unknown>, opts: CallOptions): Promise<Answer> {
  return transport === "REST" ? callRest(t, op, input, opts) : callNats(nc, PREFIX, op, input, opts);
}

/**
 * Give every caller a fresh money allowance. Fixtures are arranged through this same node (a
 * chama's withdrawal to continue was requested by the member who continues it), so each trial
 * starts from an empty money tier instead of counting what arranging spent. The limiter reserves
 * slices of max(1, limit / 20) = 1 at a time, so no node keeps unspent allowance in memory.
 */
async function freshMoneyTier(): Promise<void> {
  await t.node.db`delete from rate_windows where bucket like 'money/%'`;
}

async function arranged(name: string): Promise<Fixture> {
  await freshMoneyTier();
  const f = await fixtures.arrange(name);
  await freshMoneyTier();
  return f;
}

/** LIMIT + PAST calls with one Idempotency-Key (so at most one effect): their statuses and codes. */
async function burst(transport: Transport, f: Fixture): Promise<Answer[]> {
  const key = `money-${crypto.randomUUID()}`;
  const answers: Answer[] = [];
  for (let i = 0; i < LIMIT + PAST; i++) answers.push(await over(transport, f.op, f.input, { as: f.as, key }));
  return answers;
}

test("the money tier is exactly the operations that move money out", () => {
  for (const name of MONEY_OUT) expect({ name, known: operationNamed(name) !== undefined }).toEqual({ name, known: true });
  expect(OPERATIONS.filter((op) => op.tier === "money").map((op) => op.name).sort()).toEqual([...MONEY_OUT].sort());
});

describe("every money-tier operation, on both transports", () => {
  for (const op of OPERATIONS.filter((o) => o.tier === "money")) {
    for (const transport of TRANSPORTS) {
      test(`${op.name} over ${transport}: ${LIMIT} calls a minute, then 429 RATE_LIMITED`, async () => {
        const f = await arranged(op.name);
        const answers = await burst(transport, f);
        expect(answers.map((a) => a.status)).toEqual([...Array(LIMIT).fill(op.status), ...Array(PAST).fill(429)]);
        for (const refused of answers.slice(LIMIT)) {
          expect(refused.body.code).toBe("RATE_LIMITED");
          expect(refused.body.retryAfter).toBeGreaterThan(0);
        }
        if (transport === "REST") expect(Number(answers[LIMIT]!.headers.get("retry-after"))).toBeGreaterThan(0);
        // Replays of one key: the same answer each time, so one effect.
        for (const a of answers.slice(1, LIMIT)) expect(a.text).toBe(answers[0]!.text);
      });
    }
  }
});

describe("standard-tier operations are not limited by the money tier", () => {
  for (const transport of TRANSPORTS) {
    test(`over ${transport}, a user past the money limit still reads their wallet and its transactions, and a service still credits it`, async () => {
      const f = await arranged("wallets.payments.create");
      expect((await burst(transport, f)).at(-1)!.status).toBe(429);
      const reads = ["wallets.get", "wallets.transactions.list"].map((name) => operationNamed(name)!);
      const credit = operationNamed("wallets.credits.create")!;
      const creditor = (await fixtures.arrange("wallets.credits.create")).as;
      // The creditor spends its own money tier first, so both callers are past it.
      expect((await burst(transport, { ...f, as: creditor })).at(-1)!.status).toBe(429);
      for (let i = 0; i < LIMIT + PAST; i++) {
        for (const read of reads) {
          const input = read.name === "wallets.get" ? { walletId: f.wallet } : { walletId: f.wallet, limit: 10 };
          expect({ op: read.name, status: (await over(transport, read, input, { as: f.as })).status }).toEqual({ op: read.name, status: 200 });
        }
        expect((await over(transport, credit, { walletId: f.wallet, amount: "0.01" }, { as: creditor })).status).toBe(201);
      }
    });
  }
});
