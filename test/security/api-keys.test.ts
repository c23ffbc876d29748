import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/** API keys: shown once, stored as a hash, scoped by permissions, revocable, rotatable, IP-bound. */
let t: TestNode;
let wallet: string;
beforeAll(async () => {
  t = await startTestNode("apikeys");
  wallet = await fundedWallet(t.api, "USD", "100.00");
});
afterAll(() => t.stop());

async function createKey(body: Record<string, unknown>) {
  const res = await t.api("POST", "/v1/api-keys", { name: "svc", subject: "billing-svc", ...body });
  expect(res.status).toBe(201);
  return res.body as { id: string; key: string; prefix: string };
}

const payWith = (key: string, header: "bearer" | "x-api-key" = "bearer") =>
  t.api("POST", `/v1/wallets/${wallet}/payments`, { amount: "1.00" }, { token: null, headers: header === "bearer" ? { authorization: `Bearer ${key}` } : { "x-api-key": key } });

describe("a key with payments:write", () => {
  test("pays through either header, and only what its permissions name", async () => {
    const { key } = await createKey({ permissions: ["payments:write"] });
    expect((await payWith(key)).status).toBe(201);
    expect((await payWith(key, "x-api-key")).status).toBe(201);
    const credit = await t.api("POST", `/v1/wallets/${wallet}/credits`, { amount: "1.00" }, { token: null, headers: { "x-api-key": key } });
    expect(credit.status).toBe(403);
    expect(credit.body.code).toBe("FORBIDDEN");
  });

  test("is shown once: listings and reads carry only the prefix", async () => {
    const created = await createKey({ permissions: ["payments:write"] });
    const secret = created.key.split("_")[2]!;
    const listed = await t.api("GET", "/v1/api-keys");
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    const read = await t.api("GET", `/v1/api-keys/${created.id}`);
    expect(read.body.prefix).toBe(created.prefix);
    expect(JSON.stringify(read.body)).not.toContain(secret);
  });

  test("cannot be recovered from the database: only a hash of the secret is stored", async () => {
    const created = await createKey({ permissions: ["payments:write"] });
    const secret = created.key.split("_")[2]!;
    const [row] = await t.node.db`select row_to_json(k)::text as everything from api_keys k where id = ${created.id}`;
    expect(row!.everything).not.toContain(secret);
    expect(row!.everything).toContain(new Bun.CryptoHasher("sha256").update(secret).digest("hex"));
  });
});

describe("keys that must not work", () => {
  test("a revoked key is a 401 from then on", async () => {
    const { id, key } = await createKey({ permissions: ["payments:write"] });
    expect((await payWith(key)).status).toBe(201);
    expect((await t.api("POST", `/v1/api-keys/${id}/revoke`)).status).toBe(200);
    const after = await payWith(key);
    expect(after.status).toBe(401);
    expect(after.body.code).toBe("UNAUTHENTICATED");
  });

  test("an expired key is a 401", async () => {
    const { key } = await createKey({ permissions: ["payments:write"], expiresAt: new Date(Date.now() - 1000).toISOString() });
    expect((await payWith(key)).status).toBe(401);
  });

  test("a key used from outside its allowlist is a 403; from inside it works", async () => {
    const outside = await createKey({ permissions: ["payments:write"], ipAllowlist: ["10.0.0.0/8"] });
    expect((await payWith(outside.key)).status).toBe(403);
    const inside = await createKey({ permissions: ["payments:write"], ipAllowlist: ["127.0.0.1/32", "::1/128"] });
    expect((await payWith(inside.key)).status).toBe(201);
  });

  test("a made-up key, a wrong secret for a real prefix, or a malformed key is a 401", async () => {
    const { key } = await createKey({ permissions: ["payments:write"] });
    const wrongSecret = key.slice(0, -1) + (key.endsWith("A") ? "B" : "A");
    for (const k of ["cof_aaaaaaaaaaaa_" + "A".repeat(32), wrongSecret, "cof_short", "not-a-key"]) {
      expect((await payWith(k, "x-api-key")).status).toBe(401);
    }
  });

  test("rotation issues a new key and retires the old one", async () => {
    const old = await createKey({ permissions: ["payments:write"] });
    const rotated = await t.api("POST", `/v1/api-keys/${old.id}/rotate`);
    expect(rotated.status).toBe(201);
    expect((await payWith(old.key)).status).toBe(401);
    expect((await payWith(rotated.body.key)).status).toBe(201);
  });
});

test("only admins manage keys; auditors may list them", async () => {
  for (const as of [{ sub: "u", role: "user" as const }, { sub: "a", role: "auditor" as const }, { sub: "s", role: "service" as const, perms: ["payments:write" as const] }]) {
    const res = await t.api("POST", "/v1/api-keys", { name: "x", subject: "y", permissions: ["payments:write"] }, { as });
    expect(res.status).toBe(403);
  }
  expect((await t.api("GET", "/v1/api-keys", undefined, { as: { sub: "a", role: "auditor" } })).status).toBe(200);
});

test("bad key requests are 400s: unknown permission, bad CIDR, unknown field", async () => {
  for (const bad of [
    { name: "x", subject: "y", permissions: ["everything"] },
    { name: "x", subject: "y", permissions: ["payments:write"], ipAllowlist: ["300.1.1.1/8"] },
    { name: "x", subject: "y", permissions: ["payments:write"], admin: true },
  ]) {
    expect((await t.api("POST", "/v1/api-keys", bad)).status).toBe(400);
  }
});
