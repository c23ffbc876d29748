import { expect, test } from "bun:test";
import type { NatsConnection } from "@nats-io/transport-node";
import type { BusGuard } from "../../actors/bus/guard";
import type { Envelope } from "../../actors/envelope";
import { NatsRouter } from "../../actors/nats-router";

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
