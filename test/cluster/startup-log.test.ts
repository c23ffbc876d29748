import { afterAll, beforeAll, expect, spyOn, test } from "bun:test";
import { shardRanges } from "../../actors/cluster";
import { setLogLevel } from "../../lib/log";
import { clusterView, shardsSettled } from "../support/cluster";
import { deleteClusterState, NATS_URL } from "../support/nats";
import { startTestNode, type TestNode } from "../support/node";

/**
 * A node started with NATS_URL says where it connected (the servers, never a user or password in
 * the URL) and, once its shards settle, which it holds: one line per change, not one per round.
 */
const PREFIX = `cofferlog${crypto.randomUUID().slice(0, 8)}`;
const SHARDS = 16;
const ENV = { NATS_SUBJECT_PREFIX: PREFIX, SHARDS: String(SHARDS), LEASE_TTL_MS: "1500" };
const nodes: TestNode[] = [];
const lines: Record<string, unknown>[] = [];
let spy: ReturnType<typeof spyOn>;

beforeAll(() => {
  setLogLevel("info");
  spy = spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    try {
      const line = JSON.parse(String(args[0]));
      if (typeof line === "object" && line !== null) lines.push(line);
    } catch {
      // not one of our log lines
    }
  });
});
afterAll(async () => {
  spy.mockRestore();
  setLogLevel("warn");
  await Promise.all(nodes.map((n) => n.stop()));
  await deleteClusterState(PREFIX);
});

const said = (msg: string, nodeId?: string) => lines.filter((l) => l.msg === msg && (nodeId === undefined || l.nodeId === nodeId));

test("shard numbers read as ranges", () => {
  expect(shardRanges([0, 1, 2, 3, 5, 7, 8, 9])).toBe("0-3,5,7-9");
  expect(shardRanges([4])).toBe("4");
  expect(shardRanges([])).toBe("none");
});

test("the NATS connection and the settled shards are logged once each, without credentials", async () => {
  const withCredentials = NATS_URL.replace("://", "://coffer-node:not-for-logs@");
  const a = await startTestNode("loga", { ...ENV, NATS_URL: withCredentials, NODE_ID: "log-a" });
  nodes.push(a);
  const connected = said("NATS connected");
  expect(connected).toHaveLength(1);
  expect(connected[0]).toMatchObject({ servers: [NATS_URL.replace(/\/$/, "")], auth: "none", prefix: PREFIX });
  expect(JSON.stringify(lines)).not.toContain("not-for-logs");
  expect(JSON.stringify(lines)).not.toContain("coffer-node");
  // Alone, it holds every shard as soon as it has started.
  expect(said("cluster: shards settled", "log-a").map((l) => l.shards)).toEqual([`0-${SHARDS - 1}`]);

  // Rounds that change nothing say nothing.
  for (let round = 0; round < 3; round++) await a.node.cluster!.runRound();
  expect(said("cluster: shards settled", "log-a")).toHaveLength(1);

  // A second node joins: each says once what it holds when the shards have settled between them.
  const b = await startTestNode("logb", { ...ENV, NATS_URL, NODE_ID: "log-b" });
  nodes.push(b);
  const view = await shardsSettled(() => clusterView(a.api), ["log-a", "log-b"], SHARDS, 15_000);
  for (let round = 0; round < 3; round++) await Promise.all(nodes.map((n) => n.node.cluster!.runRound()));
  for (const node of view) {
    const settled = said("cluster: shards settled", node.nodeId);
    expect(settled.at(-1)).toMatchObject({ shards: shardRanges(node.shards!), held: node.shards!.length, shardCount: SHARDS, liveNodes: ["log-a", "log-b"] });
  }
  expect(said("cluster: shards settled", "log-a")).toHaveLength(2);
  expect(said("cluster: shards settled", "log-b")).toHaveLength(1);
});
