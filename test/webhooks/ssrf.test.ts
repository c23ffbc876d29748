import { afterAll, describe, expect, test } from "bun:test";
import { post } from "../../src/webhooks/sender";
import { forbiddenAddress, resolveTarget, urlPolicyOf, UrlRefused, type Resolver } from "../../src/webhooks/ssrf";
import { startTestNode, type TestNode } from "../support/node";
import { appService, deliveryLog, register, startReceiver, waitFor, WEBHOOK_TEST_ENV, type Receiver } from "./support";

/**
 * Server-side request forgery (src/webhooks/ssrf.ts): endpoint URLs must be https to public
 * addresses, checked when registered and again at every delivery, unless an operator allows named
 * hosts and http by configuration. A node without that configuration refuses loopback, private,
 * link-local, metadata and CGNAT addresses, literal or behind a name; a node with it takes its
 * local receiver.
 */
const receivers: Receiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.stop();
});

function receiver(): Receiver {
  const r = startReceiver();
  receivers.push(r);
  return r;
}

const APP = appService("ssrf");

describe("a node without the allow configuration", () => {
  let t: TestNode;
  afterAll(async () => {
    await t?.stop();
  });

  /** Each URL is refused: 400 naming body.url, and nothing written (no endpoint, no idempotency record). */
  const REFUSED: [string, string][] = [
    ["http://hooks.example.com/coffer", "use https"],
    ["https://127.0.0.1/hooks", "loopback"],
    ["https://127.1.2.3:8443/hooks", "loopback"],
    ["https://2130706433/hooks", "loopback"], // 127.0.0.1 written as one number
    ["https://0x7f.1/hooks", "loopback"],
    ["https://[::1]/hooks", "loopback"],
    ["https://[::ffff:127.0.0.1]/hooks", "loopback"],
    ["https://10.1.2.3/hooks", "private"],
    ["https://172.16.0.1/hooks", "private"],
    ["https://172.31.255.254/hooks", "private"],
    ["https://192.168.1.10/hooks", "private"],
    ["https://[fc00::1]/hooks", "private"],
    ["https://[fd12:3456::1]/hooks", "private"],
    ["https://169.254.169.254/latest/meta-data/", "link-local (metadata)"],
    ["https://169.254.1.1/hooks", "link-local"],
    ["https://[fe80::1]/hooks", "link-local"],
    ["https://100.64.0.1/hooks", "shared (CGNAT)"],
    ["https://224.0.0.1/hooks", "multicast"],
    ["https://0.0.0.0/hooks", "unspecified"],
    ["https://[::]/hooks", "unspecified"],
    // A name that resolves to loopback (localhost → 127.0.0.1 here): refused for what it resolves to.
    ["https://localhost/hooks", "resolves to a loopback"],
    ["https://localhost:8443/hooks", "resolves to a loopback"],
    ["https://user:secret@hooks.example.com/coffer", "user name or password"],
    ["ftp://hooks.example.com/coffer", "an https URL"],
  ];

  test("refuses http, loopback, private, link-local, metadata and CGNAT addresses, literal or behind a name", async () => {
    t = await startTestNode("webhookssrf", { COFFER_TEST_STRIPE: "off" });
    const before = await t.node.db`select (select count(*)::int from webhook_endpoints) as endpoints, (select count(*)::int from idempotency_keys) as keys`;
    const wrong: string[] = [];
    for (const [url, reason] of REFUSED) {
      const res = await t.api("POST", "/v1/webhook-endpoints", { url, events: ["wallet.*"] }, { as: APP });
      const ok = res.status === 400 && res.body.code === "VALIDATION_FAILED" && res.body.errors?.[0]?.path === "body.url" && String(res.body.detail).includes(reason);
      if (!ok) wrong.push(`${url}: ${res.status} ${JSON.stringify(res.body)}`);
      // The answer never repeats the URL (it may carry a token).
      if (JSON.stringify(res.body).includes(url)) wrong.push(`${url}: echoed`);
    }
    expect(wrong).toEqual([]);
    expect(await t.node.db`select (select count(*)::int from webhook_endpoints) as endpoints, (select count(*)::int from idempotency_keys) as keys`).toEqual(before);
  }, 30_000);

  test("takes a public address, and a name that does not resolve yet (every delivery resolves it again)", async () => {
    const literal = await register(t, "https://93.184.215.14/hooks", ["deposit.dispute.changed"], APP);
    expect(literal.status).toBe("enabled");
    const unresolved = await register(t, "https://hooks.coffer.invalid/hooks", ["wallet.opened"], APP);
    // Its deliveries fail with `dns` and are retried: nothing is sent anywhere.
    await t.api("POST", "/v1/wallets", { ownerId: "owner-ssrf", asset: "USD" });
    await waitFor("an attempt", async () => (await deliveryLog(t, unresolved.id, APP)).some((d) => d.attempts.length > 0));
    const [delivery] = await deliveryLog(t, unresolved.id, APP);
    expect(delivery.attempts[0]).toMatchObject({ error: "dns", statusCode: null });
    expect(delivery.status).toBe("pending");
  }, 30_000);
});

describe("a node with the allow configuration", () => {
  let t: TestNode;
  afterAll(async () => {
    await t?.stop();
  });

  test("takes its local receiver by the name it allows, over http, and delivers to it; not by an address it does not allow", async () => {
    t = await startTestNode("webhookallow", { ...WEBHOOK_TEST_ENV, WEBHOOK_ALLOW_HOSTS: "localhost" });
    const r = receiver();
    const byName = await register(t, `http://localhost:${r.port}/hooks`, ["wallet.opened"], APP);
    // Only the named host is allowed: the same receiver by its address is still refused.
    const byAddress = await t.api("POST", "/v1/webhook-endpoints", { url: `http://127.0.0.1:${r.port}/hooks`, events: ["wallet.opened"] }, { as: APP });
    expect({ status: byAddress.status, code: byAddress.body.code }).toEqual({ status: 400, code: "VALIDATION_FAILED" });
    await t.api("POST", "/v1/wallets", { ownerId: "owner-allowed", asset: "USD" });
    await waitFor("the delivery", () => r.accepted().length === 1);
    expect(await t.node.webhookDelivery.idle()).toBe(true);
    expect(r.accepted()[0]!.headers.get("host")).toBe(`localhost:${r.port}`);
    expect((await deliveryLog(t, byName.id, APP))[0].status).toBe("delivered");
  }, 30_000);

  test("checks again at delivery time: an endpoint whose host now means a refused address gets nothing", async () => {
    const r = receiver();
    const endpoint = await register(t, `http://localhost:${r.port}/hooks`, ["wallet.opened"], APP);
    // As if its name now pointed somewhere refused (DNS rebinding): the stored URL names the loopback address.
    await t.node.db`update webhook_endpoints set url = ${`http://127.0.0.1:${r.port}/hooks`} where id = ${endpoint.id}`;
    await t.api("POST", "/v1/wallets", { ownerId: "owner-rebound", asset: "USD" });
    await waitFor("an attempt", async () => (await deliveryLog(t, endpoint.id, APP)).some((d) => d.attempts.length > 0));
    const [delivery] = await deliveryLog(t, endpoint.id, APP);
    expect(delivery.attempts[0]).toMatchObject({ error: "address_refused", statusCode: null });
    expect(r.requests).toHaveLength(0);
  }, 30_000);
});

describe("the address check", () => {
  const NONE = urlPolicyOf({ WEBHOOK_ALLOW_HOSTS: "", WEBHOOK_ALLOW_HTTP: false });
  const answering = (map: Record<string, string[]>): Resolver => async (host) => map[host] ?? [];

  test("knows every refused range, and lets public addresses through", () => {
    const refused = [
      "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.0.1", "169.254.169.254", "100.64.1.1", "100.127.255.255", "0.0.0.0", "224.1.2.3",
      "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1",
      "::", "::1", "fc00::1", "fdff::1", "fe80::1", "febf::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "2002:7f00:1::1",
    ];
    const allowed = ["93.184.215.14", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.32.0.1", "192.169.0.1", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8"];
    expect(refused.filter((a) => forbiddenAddress(a) === undefined)).toEqual([]);
    expect(allowed.filter((a) => forbiddenAddress(a) !== undefined)).toEqual([]);
  });

  test("refuses a name with any refused answer, and names that mean this network whatever they resolve to", async () => {
    const dns = answering({ "mixed.example.com": ["93.184.215.14", "10.0.0.7"], "ok.example.com": ["93.184.215.14"], "metadata.example.com": ["169.254.169.254"] });
    await expect(resolveTarget("mixed.example.com", NONE, dns)).rejects.toBeInstanceOf(UrlRefused);
    await expect(resolveTarget("metadata.example.com", NONE, dns)).rejects.toThrow("link-local");
    expect(await resolveTarget("ok.example.com", NONE, dns)).toEqual({ kind: "public", addresses: ["93.184.215.14"] });
    for (const name of ["intranet", "printer.local", "metadata.google.internal", "db.localhost"]) {
      await expect(resolveTarget(name, NONE, answering({ [name]: ["93.184.215.14"] }))).rejects.toThrow("local name");
    }
    expect(await resolveTarget("gone.example.com", NONE, dns)).toEqual({ kind: "unresolved" });
    const allowing = urlPolicyOf({ WEBHOOK_ALLOW_HOSTS: " Hooks.Internal ,[::1]", WEBHOOK_ALLOW_HTTP: true });
    expect(await resolveTarget("hooks.internal", allowing, dns)).toEqual({ kind: "allowed" });
    expect(await resolveTarget("::1", allowing, dns)).toEqual({ kind: "allowed" });
  });

  test("a delivery to a name that now resolves to a refused address connects nowhere", async () => {
    const r = receiver();
    // The name answered a public address at registration; at delivery it answers the loopback (DNS rebinding).
    const rebound = answering({ "rebinding.example.com": ["127.0.0.1"] });
    const sent = await post(`https://rebinding.example.com:${r.port}/hooks`, "{}", {}, { policy: NONE, timeoutMs: 1_000, bodyMaxBytes: 1_024, resolve: rebound });
    expect(sent).toMatchObject({ ok: false, error: "address_refused", statusCode: null });
    expect(r.requests).toHaveLength(0);
    // A body over the cap is never sent.
    const big = await post(`https://ok.example.com/hooks`, "x".repeat(2_048), {}, { policy: NONE, timeoutMs: 1_000, bodyMaxBytes: 1_024, resolve: rebound });
    expect(big.error).toBe("too_large");
  });
});
