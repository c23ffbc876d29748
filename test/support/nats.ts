import type { Subprocess } from "bun";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";

export const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

/**
 * Delete what a cluster with this subject prefix left in JetStream (its shard and node buckets,
 * its event stream), so repeated runs do not pile streams up on the shared NATS server.
 */
export async function deleteClusterState(...prefixes: string[]): Promise<void> {
  const nc = await connect({ servers: NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    for (const prefix of prefixes) {
      for (const name of [`KV_${prefix}_nodes`, `KV_${prefix}_leases`, `${prefix.toUpperCase().replaceAll("-", "_")}_EVENTS`, `${prefix.toUpperCase().replaceAll("-", "_")}_CHAIN_WORK`]) {
        await jsm.streams.delete(name).catch(() => {});
      }
    }
  } finally {
    await nc.drain();
  }
}

/** A nats-server of a test's own (its own port and JetStream store), so the shared one is never touched. */
export interface NatsServer {
  url: string;
  proc: Subprocess;
  /** SIGKILL, and wait for the exit (the store stays, for a restart on the same port). */
  kill(): Promise<void>;
}

/**
 * Start `nats-server -js` on `port` with its store in `storeDir`, and wait (bounded) until it
 * answers a JetStream request: nodes need JetStream (leases, outbox), not just the port. A
 * nats-server has no "ready" signal to await, so this polls.
 */
export async function startNatsServer(port: number, storeDir: string, ready_ms = 10_000): Promise<NatsServer> {
  const url = `nats://127.0.0.1:${port}`;
  const proc = Bun.spawn(["nats-server", "-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const kill = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
  };
  const until = Date.now() + ready_ms;
  while (Date.now() < until && proc.exitCode === null) {
    const nc = await connect({ servers: url, reconnect: false, timeout: 500 }).catch(() => undefined);
    if (nc) {
      const ok = await jetstreamManager(nc, { timeout: 500 })
        .then((jsm) => jsm.getAccountInfo())
        .then(() => true, () => false);
      await nc.close();
      if (ok) return { url, proc, kill };
    }
    await Bun.sleep(50);
  }
  await kill();
  throw new Error(`nats-server on ${url} not ready after ${ready_ms} ms (exit ${proc.exitCode ?? proc.signalCode ?? "none"})`);
}
