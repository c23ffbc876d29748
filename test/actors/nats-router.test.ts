import { expect, test } from "bun:test";
import { NoRespondersError, RequestError, type NatsConnection } from "@nats-io/transport-node";
import type { BusGuard } from "../../actors/bus/guard";
import type { Envelope } from "../../actors/envelope";
import { NatsRouter, type ShardOwners } from "../../actors/nats-router";
import { OwnerHints, ownerHints } from "../../actors/router";
import { shardOf } from "../../actors/shards";

/**
 * The router's bound on commands forwarded at once. NATS and the bus guard are stand-ins here that
 * answer when the test says so; forwarding itself (signing, owners, retries) is exercised by the
 * cluster, NATS and bus suites against a real server.
 */
function ownerThatAnswersWhenTold() {
  const pending: (() => void)[] = [];
  const nc = {
    request: () =>
      new Promise<{ data: Uint8Array }>((resolve) => pending.push(() => resolve({ data: new TextEncoder().encode('{"status":201,"body":{"ok":true}}') }))),
  } as unknown as NatsConnection;
  const bus = {
    sealCommand: () => ({ payload: "sealed", nonce: "nonce" }),
    openReply: (_nonce: string, data: Uint8Array) => new TextDecoder().decode(data),
  } as unknown as BusGuard;
  return { nc, bus, pending };
}

const envelope = (key: string): Envelope => ({
  command: { type: "wallet.freeze", at: "2026-01-01T00:00:00.000Z" },
  idempotency: { scope: "admin:test", key, fingerprint: key },
  principal: { sub: "test", role: "admin", permissions: [] },
});
const wallet = { kind: "wallet" as const, id: "0198e3a0-0000-7000-8000-000000000001" };

test("past inFlightMax forwarded commands and waitingMax waiting ones, the next is answered 503 OVERLOADED without being sent", async () => {
  const owner = ownerThatAnswersWhenTold();
  const router = new NatsRouter(owner.nc, owner.bus, { prefix: "t", shardCount: 4, requestTimeoutMs: 1_000, deadlineMs: 1_000, inFlightMax: 1, waitingMax: 1 });
  const first = router.send(wallet, envelope("k1"));
  const second = router.send(wallet, envelope("k2"));
  const third = await router.send(wallet, envelope("k3"));
  expect(third).toMatchObject({ status: 503, body: { code: "OVERLOADED" } });
  expect({ sent: owner.pending.length, inFlight: router.gate.inFlight, waiting: router.gate.waiting }).toEqual({ sent: 1, inFlight: 1, waiting: 1 });

  owner.pending.shift()!();
  expect(await first).toEqual({ status: 201, body: { ok: true } });
  await Bun.sleep(0);
  expect(owner.pending.length).toBe(1); // the waiting one went out once a slot freed
  owner.pending.shift()!();
  expect(await second).toEqual({ status: 201, body: { ok: true } });
  expect({ inFlight: router.gate.inFlight, waiting: router.gate.waiting, refused: router.gate.refused }).toEqual({ inFlight: 0, waiting: 0, refused: 1 });
});

/**
 * Coalescing, with NATS and the guard as stand-ins: commands for shards another node should own go
 * to it many to a message while one is in flight; what the batch does not answer goes again alone
 * on the shard's subject (re-resolved once); what this node holds runs here without NATS.
 */
function clusterOfStandIns(answer: (subject: string, body: string) => string | Error) {
  const requests: { subject: string; body: string; respond: () => void }[] = [];
  const nc = {
    request: (subject: string, payload: string) =>
      new Promise<{ data: Uint8Array }>((resolve, reject) => {
        const body = payload.slice(payload.indexOf("\n") + 1);
        requests.push({
          subject,
          body,
          respond: () => {
            const a = answer(subject, body);
            if (a instanceof Error) reject(a);
            else resolve({ data: new TextEncoder().encode(a) });
          },
        });
      }),
  } as unknown as NatsConnection;
  const bus = {
    seal: (_subject: string, body: string) => ({ payload: `h\n${body}`, nonce: "n" }),
    sealCommand: (_subject: string, e: Envelope) => ({ payload: `h\n${e.idempotency.key}`, nonce: "n" }),
    openReply: (_nonce: string, data: Uint8Array) => new TextDecoder().decode(data),
  } as unknown as BusGuard;
  const local: string[] = [];
  const owners: ShardOwners = {
    nodeId: "me",
    holds: (shard) => shard === 0,
    ownerOf: () => "other",
    dispatch: async (_id, e) => {
      local.push(e.idempotency.key);
      return { status: 201, body: { here: e.idempotency.key } };
    },
  };
  return { nc, bus, owners, requests, local };
}

/** A wallet id on shard `shard` of 4. */
function walletOnShard(shard: number): string {
  for (let i = 0; ; i++) {
    const id = `0198e3a0-0000-7000-8000-${String(i).padStart(12, "0")}`;
    if (shardOf(id, 4) === shard) return id;
  }
}

test("commands for another node's shards leave many to a message while one is in flight; the ones it does not own go again alone, once", async () => {
  const remote = { kind: "wallet" as const, id: walletOnShard(1) };
  const held = { kind: "wallet" as const, id: walletOnShard(0) };
  const s = clusterOfStandIns((subject, body) => {
    if (!subject.startsWith("t.node.")) return JSON.stringify({ status: 201, body: { single: body } });
    const items = JSON.parse(body).c as [string, string][];
    // The owner answers every command but says k3 is not its shard's (the shard moved).
    const keys = items.map(([, sealed]) => sealed.slice(sealed.indexOf("\n") + 1));
    return JSON.stringify({ v: 1, n: "other", u: "http://other:3000", r: keys.map((key) => (key === "k3" ? 0 : { status: 201, body: { batched: key } })) });
  });
  const router = new NatsRouter(s.nc, s.bus, { prefix: "t", shardCount: 4, requestTimeoutMs: 1_000, deadlineMs: 1_000, inFlightMax: 100, waitingMax: 0, batchesInFlightMax: 1 });
  router.useCluster(s.owners);

  const hints = new OwnerHints();
  const first = ownerHints.run(hints, () => router.send(remote, envelope("k1")));
  await Bun.sleep(0);
  expect(s.requests.map((r) => r.subject)).toEqual(["t.node.other.commands"]); // k1 alone: nothing else waited
  const rest = ["k2", "k3", "k4", "k5"].map((k) => router.send(remote, envelope(k)));
  const here = await router.send(held, envelope("h1"));
  expect(here).toEqual({ status: 201, body: { here: "h1" } });
  expect(s.local).toEqual(["h1"]);
  await Bun.sleep(0);
  expect(s.requests.length).toBe(1); // the others wait for the batch in flight

  s.requests.shift()!.respond();
  expect(await first).toEqual({ status: 201, body: { batched: "k1" } });
  expect(hints.of(remote.id)).toBe("http://other:3000");
  await Bun.sleep(0);
  expect(s.requests.map((r) => [r.subject, JSON.parse(r.body).c.length])).toEqual([["t.node.other.commands", 4]]);
  s.requests.shift()!.respond();
  await Bun.sleep(0);
  // k3 was "not mine": sent once more, alone, on its shard's subject; nothing is sent to a node again.
  expect(s.requests.map((r) => r.subject)).toEqual([`t.wallet.1.${remote.id}`]);
  s.requests.shift()!.respond();
  expect(await Promise.all(rest)).toEqual([
    { status: 201, body: { batched: "k2" } },
    { status: 201, body: { single: "k3" } },
    { status: 201, body: { batched: "k4" } },
    { status: 201, body: { batched: "k5" } },
  ]);
  expect(router.sent).toEqual({ batches: 2, batchedCommands: 5, singles: 1, local: 1 });
});

test("a batch that gets no answer sends each of its commands again alone, with the same envelope", async () => {
  const remote = { kind: "wallet" as const, id: walletOnShard(2) };
  const s = clusterOfStandIns((subject, body) => (subject.startsWith("t.node.") ? new Error("timeout") : JSON.stringify({ status: 201, body: { single: body } })));
  const router = new NatsRouter(s.nc, s.bus, { prefix: "t", shardCount: 4, requestTimeoutMs: 1_000, deadlineMs: 1_000, inFlightMax: 100, waitingMax: 0 });
  router.useCluster(s.owners);
  const sent = ["a", "b", "c"].map((k) => router.send(remote, envelope(k)));
  await Bun.sleep(0);
  expect(s.requests.length).toBe(1);
  s.requests.shift()!.respond();
  await Bun.sleep(0);
  expect(s.requests.map((r) => r.body).sort()).toEqual(["a", "b", "c"]);
  for (const r of s.requests.splice(0)) r.respond();
  expect(await Promise.all(sent)).toEqual(["a", "b", "c"].map((k) => ({ status: 201, body: { single: k } })));
});

test("a node with nobody on its batch subject (older code) gets single commands, at once and for a while after", async () => {
  const remote = { kind: "wallet" as const, id: walletOnShard(3) };
  const s = clusterOfStandIns((subject, body) =>
    subject.startsWith("t.node.") ? new RequestError("no responders", { cause: new NoRespondersError(subject) }) : JSON.stringify({ status: 201, body: { single: body } }),
  );
  const router = new NatsRouter(s.nc, s.bus, { prefix: "t", shardCount: 4, requestTimeoutMs: 1_000, deadlineMs: 1_000, inFlightMax: 100, waitingMax: 0 });
  router.useCluster(s.owners);
  const first = router.send(remote, envelope("old-1"));
  await Bun.sleep(0);
  s.requests.shift()!.respond(); // the batch: no responders
  await Bun.sleep(0);
  expect(s.requests.map((r) => r.subject)).toEqual([`t.wallet.3.${remote.id}`]);
  s.requests.shift()!.respond();
  expect(await first).toEqual({ status: 201, body: { single: "old-1" } });
  const second = router.send(remote, envelope("old-2"));
  await Bun.sleep(0);
  expect(s.requests.map((r) => r.subject)).toEqual([`t.wallet.3.${remote.id}`]); // no batch tried
  s.requests.shift()!.respond();
  expect(await second).toEqual({ status: 201, body: { single: "old-2" } });
});
