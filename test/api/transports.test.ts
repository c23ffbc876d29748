import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { OPERATIONS, operationNamed } from "../../src/api/operations";
import type { Operation } from "../../src/api/operation";
import type { As } from "../support/auth";
import { deleteClusterState, NATS_URL } from "../support/nats";
import { startTestNode, type TestNode } from "../support/node";
import { callNats, callRest, operationFixtures, type Answer, type Fixtures } from "../support/operations";

/**
 * REST and NATS are two doors to the same table (src/api/operations/): for every entry, the same
 * input from the same caller gets the same answer through either. Reads answer identically;
 * changes, made on two fresh fixtures, answer the same apart from ids and times; and the REST
 * answer is replayed byte for byte over NATS with the same Idempotency-Key (keys are per caller,
 * whatever the transport). Bad input and a caller the policy refuses are refused alike. Inputs come
 * from test/support/operations.ts, whose `arrange` throws for an operation it has no fixture for.
 */
const RUN = crypto.randomUUID().slice(0, 8);
const PREFIX = `coffertransports${RUN}`;

let t: TestNode;
let nc: NatsConnection;
let fixtures: Fixtures;

beforeAll(async () => {
  t = await startTestNode("transports", { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX, NODE_ID: `transports-${RUN}` });
  nc = await connect({ servers: NATS_URL });
  fixtures = operationFixtures(t);
});
afterAll(async () => {
  await nc.drain();
  await t.stop();
  await deleteClusterState(PREFIX);
});

const overNats = (op: Operation, input: Record<string, unknown>, opts: Parameters<typeof callNats>[4] = {}) => callNats(nc, PREFIX, op, input, opts);

/**
 * Reads whose answer carries the moment it was made, so two reads differ even with nothing
 * changed: the cluster view's lease ages (milliseconds since each lease was taken).
 */
const CLOCKED_READS: Record<string, (body: any) => unknown> = {
  "admin.cluster": (body) => ({ ...body, nodes: body.nodes.map((n: any) => ({ ...n, leaseAgesMs: Object.keys(n.leaseAgesMs ?? {}) })) }),
  // When each part was asked and how long it took to answer (the states are compared).
  "admin.health": (body) => ({ ...body, checkedAt: "<time>", components: body.components.map((c: any) => ({ name: c.name, state: c.state })) }),
  // How long the run took.
  "admin.reconciliation": (body) => ({ ...body, summary: { ...body.summary, elapsedMs: 0 } }),
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** An API key's secret or prefix, or a webhook endpoint's signing secret: each fixture has its own. */
const SECRET = /^(cof_[a-z0-9]+(_[A-Za-z0-9]+)?|whsec_[A-Za-z0-9]+)$/;
/** Ids Stripe made (a PaymentIntent's and its client secret, a refund's): each fixture has its own. */
const STRIPE_ID = /^(pi|re|ch|du|dp)_[A-Za-z0-9]+(_secret_[A-Za-z0-9]+)?$/;

/** The body with every id, time and API-key secret or prefix replaced by a placeholder. */
function apartFromIdsAndTimes(value: unknown): unknown {
  if (typeof value === "string") return UUID.test(value) ? "<id>" : TIME.test(value) ? "<time>" : SECRET.test(value) ? "<key>" : STRIPE_ID.test(value) ? "<stripe-id>" : value;
  if (Array.isArray(value)) return value.map(apartFromIdsAndTimes);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, apartFromIdsAndTimes(v)]));
  return value;
}

const verdict = (a: Answer) => ({ status: a.status, code: a.body?.code });

test("the suite tries every operation of the table, and its exceptions name real ones", () => {
  for (const name of Object.keys(CLOCKED_READS)) expect({ name, known: operationNamed(name) !== undefined }).toEqual({ name, known: true });
  for (const name of Object.keys(CLOCKED_READS)) expect(operationNamed(name)!.method).toBe("GET");
});

describe("a read answers identically over REST and NATS", () => {
  for (const op of OPERATIONS.filter((o) => o.method === "GET")) {
    test(`${op.name}`, async () => {
      const f = await fixtures.arrange(op.name);
      const rest = await callRest(t, op, f.input, { as: f.as });
      const nats = await overNats(op, f.input, { as: f.as });
      expect(verdict(rest)).toEqual({ status: op.status, code: undefined });
      const same = CLOCKED_READS[op.name] ?? ((body: unknown) => body);
      expect({ status: nats.status, body: same(nats.body) }).toEqual({ status: rest.status, body: same(rest.body) });
      if (!CLOCKED_READS[op.name]) expect(nats.text).toBe(rest.text);
    });
  }
});

describe("a change answers the same over REST and NATS, and its REST answer replays over NATS byte for byte", () => {
  for (const op of OPERATIONS.filter((o) => o.method === "POST")) {
    test(`${op.name}`, async () => {
      const [a, b] = [await fixtures.arrange(op.name), await fixtures.arrange(op.name)];
      const key = `transports-${crypto.randomUUID()}`;
      const rest = await callRest(t, op, a.input, { as: a.as, key });
      const nats = await overNats(op, b.input, { as: b.as });
      expect(verdict(rest)).toEqual({ status: op.status, code: undefined });
      expect(verdict(nats)).toEqual(verdict(rest));
      expect(apartFromIdsAndTimes(nats.body)).toEqual(apartFromIdsAndTimes(rest.body));

      const replay = await overNats(op, a.input, { as: a.as, key });
      expect({ status: replay.status, text: replay.text }).toEqual({ status: rest.status, text: rest.text });
    });
  }
});

describe("a bad input and a refused caller are refused alike over REST and NATS", () => {
  for (const op of OPERATIONS) {
    test(`${op.name}`, async () => {
      const f = await fixtures.arrange(op.name);
      // An unknown field: every input is a strict object.
      const bad = { ...f.input, unexpected: "field" };
      const [restBad, natsBad] = [await callRest(t, op, bad, { as: f.as }), await overNats(op, bad, { as: f.as })];
      expect(verdict(restBad)).toEqual({ status: 400, code: "VALIDATION_FAILED" });
      expect(verdict(natsBad)).toEqual(verdict(restBad));
      // A service with no permission at all: the policy refuses it for every operation.
      const nobody: As = { sub: "svc-nothing", role: "service", perms: [] };
      const [restRefused, natsRefused] = [await callRest(t, op, f.input, { as: nobody }), await overNats(op, f.input, { as: nobody })];
      expect(verdict(restRefused)).toEqual({ status: 403, code: "FORBIDDEN" });
      expect(verdict(natsRefused)).toEqual(verdict(restRefused));
    });
  }
});
