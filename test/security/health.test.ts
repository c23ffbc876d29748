import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Cluster } from "../../actors/cluster";
import { connect } from "../../lib/db";
import type { HttpDeps } from "../../src/http/deps";
import { appWith } from "../support/app";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/**
 * `/health` answers anyone, so it says only what anyone needs: up (200 `{status: "ok"}`) or not
 * (503 `{status: "unavailable"}`): no actor counts, node ids, shards or reasons. The details are
 * behind a credential on /admin/cluster.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("health");
});
afterAll(() => t.stop());


test("without credentials, /health says ok and nothing else, however many actors are loaded", async () => {
  const wallet = await fundedWallet(t.api, "USD", "1.00");
  expect((await t.api("GET", `/v1/wallets/${wallet}`)).status).toBe(200);
  expect(t.node.host.size).toBeGreaterThan(0);
  const res = await t.api("GET", "/health", undefined, { token: null });
  expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: { status: "ok" } });
});

test("a node whose cluster membership is unhealthy answers 503 unavailable, without the reason", async () => {
  const reason = "subscriptions dead on node-7 holding shards 0..127";
  const cluster = { health: () => ({ ok: false, reason }) } as unknown as Cluster;
  const res = await (await appWith(t, { cluster })).request("/health");
  expect({ status: res.status, body: await res.json() }).toEqual({ status: 503, body: { status: "unavailable" } });

  const healthy = { health: () => ({ ok: true }) } as unknown as Cluster;
  const ok = await (await appWith(t, { cluster: healthy })).request("/health");
  expect({ status: ok.status, body: await ok.json() }).toEqual({ status: 200, body: { status: "ok" } });
});

test("a node whose database does not answer answers 503 unavailable, and says nothing about the database", async () => {
  const dead = connect("postgres://postgres@127.0.0.1:1/nothing", 1);
  try {
    const res = await (await appWith(t, { db: dead })).request("/health");
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 503, body: { status: "unavailable" } });
  } finally {
    await dead.end({ timeout: 1 });
  }
});
