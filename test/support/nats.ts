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
      for (const name of [`KV_${prefix}_nodes`, `KV_${prefix}_leases`, `${prefix.toUpperCase().replaceAll("-", "_")}_EVENTS`]) {
        await jsm.streams.delete(name).catch(() => {});
      }
    }
  } finally {
    await nc.drain();
  }
}
