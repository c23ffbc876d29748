import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureVaultFile, Vault } from "../../src/security/encryption";
import { loadConfig } from "../../src/config";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { testDir } from "../support/temp";

/** Payout destinations are sealed at rest: AES-256-GCM, key by id, bound to their row. */
const dir = testDir("vault");

describe("the vault", () => {
  test("opens what it sealed, for the same row only, and refuses tampering", async () => {
    const path = join(dir, "one.json");
    expect(await ensureVaultFile(path)).toBe(true);
    expect(await ensureVaultFile(path)).toBe(false);
    const vault = await Vault.load(path);
    const secret = { type: "bank", account: "12345678901234" };
    const sealed = vault.seal(secret, "row-1");
    expect(JSON.stringify(sealed)).not.toContain("12345678901234");
    expect(vault.open(sealed, "row-1")).toEqual(secret);
    expect(() => vault.open(sealed, "row-2")).toThrow();
    const flipped = Buffer.from(sealed.ct, "base64");
    flipped[0] = flipped[0]! ^ 1;
    expect(() => vault.open({ ...sealed, ct: flipped.toString("base64") }, "row-1")).toThrow();
    expect(vault.seal(secret, "row-1").ct).not.toBe(sealed.ct); // a fresh IV every time
  });

  test("after rotation, new data uses the new key and old data still opens", async () => {
    const key = (n: number) => Buffer.alloc(32, n).toString("base64");
    const fingerprintKey = Buffer.alloc(32, 9).toString("base64");
    const before = join(dir, "before.json");
    const after = join(dir, "after.json");
    writeFileSync(before, JSON.stringify({ active: "e1", keys: { e1: key(1) }, fingerprintKey }));
    writeFileSync(after, JSON.stringify({ active: "e2", keys: { e1: key(1), e2: key(2) }, fingerprintKey }));
    const old = (await Vault.load(before)).seal("old", "r");
    const rotated = await Vault.load(after);
    expect(rotated.open(old, "r")).toBe("old");
    expect(rotated.seal("new", "r").kid).toBe("e2");
  });
});

describe("a withdrawal's destination", () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode("vault");
  });
  afterAll(() => t.stop());

  test("is stored sealed, shown masked, and opens only with the vault and its withdrawal id", async () => {
    const wallet = await fundedWallet(t.api, "USD", "50.00");
    const account = "DE89370400440532013000";
    const requested = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "10.00", destination: { type: "bank", account } });
    expect(requested.status).toBe(201);
    expect(requested.body.destination).toEqual({ type: "bank", account: "****3000" });
    const id = requested.body.id;
    const [row] = await t.node.db`select destination::text as stored, destination from withdrawals where id = ${id}`;
    expect(row!.stored).not.toContain(account);
    expect(row!.stored).not.toContain("0532013");
    const vault = await Vault.load(loadConfig({}).vaultFile);
    expect(vault.open(row!.destination.sealed, id)).toEqual({ type: "bank", account });
    expect((await t.api("GET", `/v1/withdrawals/${id}`)).body.destination).toEqual({ type: "bank", account: "****3000" });
    // Nothing else that was written holds it either: not the outbox, not the idempotency record.
    const [elsewhere] = await t.node.db`select
      (select count(*) from events where payload::text like ${"%" + account + "%"})::int as outbox,
      (select count(*) from idempotency_keys where body::text like ${"%" + account + "%"} or fingerprint like ${"%" + account + "%"})::int as keys`;
    expect(elsewhere).toEqual({ outbox: 0, keys: 0 });
  });
});
