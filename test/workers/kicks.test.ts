import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { BusGuard } from "../../actors/bus/guard";
import { BusKeys } from "../../actors/bus/keys";
import { Kicks } from "../../src/workers/kicks";
import type { Ownership, Singleton } from "../../src/workers/ownership";
import { NATS_URL } from "../support/nats";

/**
 * A commit on a node that does not hold a singleton job wakes the node that does: over NATS, signed,
 * at most one kick per job per throttle window (the last of a burst still goes), and an unsigned
 * kick wakes nothing.
 */
const PREFIX = `cofferkick${crypto.randomUUID().slice(0, 8)}`;
const keys = BusKeys.of("c1", { c1: randomBytes(32) });
const guard = () => new BusGuard(keys, { maxAgeMs: 15_000, shardCount: 16 });
const leading = (jobs: Singleton[]): Ownership => ({ shardCount: 16, shards: () => [], leads: (job) => jobs.includes(job) });

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
});
afterAll(async () => {
  await nc.close();
});

/** Resolves once `count()` reaches `n` (kicks cross the server: nothing else to await), bounded. */
async function reaches(count: () => number, n: number, deadlineMs = 5_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (count() < n && Date.now() < until) await Bun.sleep(5);
  expect(count()).toBeGreaterThanOrEqual(n);
}

test("a kick on a node that does not hold the job wakes the holder; a burst is a kick or two; an unsigned one wakes nothing", async () => {
  let relayed = 0;
  let monitored = 0;
  let elsewhere = 0;
  const holder = new Kicks(nc, guard(), PREFIX, leading(["outbox-relay"])).handle("outbox-relay", () => relayed++).handle("monitoring", () => monitored++);
  const other = new Kicks(nc, guard(), PREFIX, leading(["monitoring"])).handle("outbox-relay", () => elsewhere++).handle("monitoring", () => monitored++);
  holder.start();
  other.start();
  await nc.flush();
  try {
    other.kick("outbox-relay");
    await reaches(() => relayed, 1);
    expect(elsewhere).toBe(0);

    // A burst: the first goes at once (or within the window), the rest are one trailing kick.
    await Bun.sleep(60);
    const before = relayed;
    for (let i = 0; i < 50; i++) other.kick("outbox-relay");
    await reaches(() => relayed - before, 1);
    await Bun.sleep(150);
    expect(relayed - before).toBeGreaterThanOrEqual(1);
    expect(relayed - before).toBeLessThanOrEqual(2);

    // The holder of a job wakes its own worker without a message.
    other.kick("monitoring");
    expect(monitored).toBe(1);

    // Unsigned: dropped by the guard.
    nc.publish(`${PREFIX}.cluster.kick.outbox-relay`, "");
    await nc.flush();
    await Bun.sleep(50);
    expect(relayed - before).toBeLessThanOrEqual(2);
  } finally {
    holder.stop();
    other.stop();
  }
});
