import { afterAll, beforeAll, expect, test } from "bun:test";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { OutboxRelay } from "../../src/workers/outbox-relay";
import { deleteClusterState } from "../support/nats";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/** The outbox reaches JetStream: every committed event once, in commit order per wallet. */
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const PREFIX = `cofferrelay${crypto.randomUUID().slice(0, 8)}`;

let t: TestNode;
let nc: NatsConnection;
let jsm: JetStreamManager;
beforeAll(async () => {
  t = await startTestNode("relay", { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX });
  nc = await connect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc.drain();
  await t.stop();
  await deleteClusterState(PREFIX);
});

/** Every message in the stream (the node's relay's unless named), in stream order. */
async function streamed(stream = t.node.relay!.stream): Promise<{ subject: string; msgId: string | undefined; event: any }[]> {
  const info = await jsm.streams.info(stream);
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m) out.push({ subject: m.subject, msgId: m.header.get("Nats-Msg-Id") || undefined, event: m.json() });
  }
  return out;
}

test("every committed event is published once, with its id as Nats-Msg-Id, in commit order per wallet", async () => {
  const a = await fundedWallet(t.api, "USD", "20.00");
  const b = await fundedWallet(t.api, "USD");
  await Promise.all(Array.from({ length: 10 }, () => t.api("POST", `/v1/wallets/${a}/payments`, { amount: "1.00" })));
  expect((await t.api("POST", "/v1/transfers", { fromWalletId: a, toWalletId: b, amount: "2.00" })).status).toBe(201);
  expect(await t.node.saga.idle()).toBe(true);
  expect(await t.node.relay!.idle()).toBe(true);

  const outbox = await t.node.db`select id, seq, aggregate_id, type from events order by seq`;
  const messages = await streamed();
  // Each event exactly once...
  expect(messages.map((m) => m.msgId).sort()).toEqual(outbox.map((r) => r.id as string).sort());
  const byId = new Map(outbox.map((r) => [r.id as string, r]));
  for (const m of messages) {
    const row = byId.get(m.event.id)!;
    expect(m.msgId).toBe(row.id);
    expect(m.subject).toBe(`${PREFIX}.events.${row.type}.${row.aggregate_id}`);
  }
  // ...and each wallet's events in the order it committed them.
  for (const wallet of [a, b]) {
    const published = messages.filter((m) => m.event.aggregateId === wallet).map((m) => m.event.seq);
    expect(published).toEqual(outbox.filter((r) => r.aggregate_id === wallet).map((r) => Number(r.seq)));
  }
  const paid = messages.filter((m) => m.event.type === "wallet.paid");
  expect(paid).toHaveLength(10);
  expect(paid.every((m) => m.event.data.amount === "100" && m.event.data.walletId === a)).toBe(true);
  expect(messages.map((m) => m.event.type)).toContain("transfer.settled");
});

test("an event published twice (a relay that crashed before marking it) is stored once", async () => {
  const before = (await jsm.streams.info(t.node.relay!.stream)).state.messages;
  await t.node.db`update event_cursors set xid = '0'::xid8, seq = 0 where name = 'relay'`;
  t.node.relay!.kick();
  expect(await t.node.relay!.idle()).toBe(true);
  expect((await jsm.streams.info(t.node.relay!.stream)).state.messages).toBe(before);
});

test("destinations never travel in events", async () => {
  const w = await fundedWallet(t.api, "USD", "5.00");
  expect((await t.api("POST", `/v1/wallets/${w}/withdrawals`, { amount: "1.00", destination: { type: "us_bank", routing: "021000021", account: "99887766554433" } })).status).toBe(201);
  expect(await t.node.relay!.idle()).toBe(true);
  const text = JSON.stringify(await streamed());
  expect(text).not.toContain("99887766554433");
  expect(text).toContain("withdrawal.changed");
});

// Last: it stops the node's relay and relays the same events with one of its own.
test("events go out many to an ack, each once and in commit order, also when another message gets into the stream between passes", async () => {
  const a = await fundedWallet(t.api, "USD", "500.00");
  const b = await fundedWallet(t.api, "USD", "500.00");
  const pay = (w: string, n: number) => Promise.all(Array.from({ length: n }, () => t.api("POST", `/v1/wallets/${w}/payments`, { amount: "1.00" })));
  await Promise.all([pay(a, 120), pay(b, 120)]);
  expect(await t.node.relay!.idle()).toBe(true);
  await t.node.relay!.stop();

  // A relay of its own (its connection counted) on every event so far, from the start, into a stream of its own.
  const prefix = `${PREFIX}x`;
  const own = await connect({ servers: NATS_URL });
  const relay = new OutboxRelay(t.node.db, own, prefix, 60_000);
  try {
    await t.node.db`update event_cursors set xid = '0'::xid8, seq = 0 where name = 'relay'`;
    await relay.start();
    expect(await relay.idle()).toBe(true);
    const events = await t.node.db`select id, seq, aggregate_id from events order by seq`;
    expect(events.length).toBeGreaterThan(240);
    const inOrder = async (foreign: number) => {
      const messages = await streamed(relay.stream);
      expect(messages).toHaveLength(events.length + foreign);
      const mine = messages.filter((m) => m.msgId !== undefined && !m.msgId.startsWith("foreign"));
      expect(mine.map((m) => m.msgId).sort()).toEqual(events.map((r) => r.id as string).sort());
      for (const wallet of [a, b]) {
        expect(mine.filter((m) => m.event.aggregateId === wallet).map((m) => m.event.seq)).toEqual(events.filter((r) => r.aggregate_id === wallet).map((r) => Number(r.seq)));
      }
    };
    await inOrder(0);
    // One ack for the first event and one per chunk after it (plus the stream's own requests): not one per event.
    expect(own.stats().inMsgs).toBeLessThan(events.length / 10);

    // Someone else's message lands behind the relay's last event: its next chunk is refused whole and sent again.
    await jetstream(nc).publish(`${prefix}.events.foreign.x`, JSON.stringify({}), { msgID: "foreign-1" });
    await Promise.all([pay(a, 30), pay(b, 30)]);
    relay.kick();
    expect(await relay.idle()).toBe(true);
    events.splice(0, events.length, ...(await t.node.db`select id, seq, aggregate_id from events order by seq`));
    await inOrder(1);
  } finally {
    await relay.stop();
    await own.drain();
    await deleteClusterState(prefix);
  }
});
