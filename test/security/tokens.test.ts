import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { join } from "node:path";
import { TOKEN_SETTINGS, testKeys, tokenFor } from "../support/auth";
import { fundedWallet, startTestNode, type ApiOptions, type TestNode } from "../support/node";
import { testDir } from "../support/temp";
import { expectProblem, footprint } from "./support";

/**
 * Bearer tokens, attacked over real HTTP. Every forged, stale, misdirected or malformed credential
 * gets the same 401 problem with a WWW-Authenticate challenge, and changes nothing: each case both
 * reads a wallet and tries to credit it as an admin would.
 */
let t: TestNode;
let walletId: string;
let signingKey: CryptoKey;
let publicJwk: JWK;
let publicKey: CryptoKey;

beforeAll(async () => {
  t = await startTestNode("tokens");
  const { file, ring } = await testKeys();
  signingKey = ring.signingKey!;
  publicKey = ring.verifying.get(ring.activeKid)!.key;
  publicJwk = ((await Bun.file(file).json()) as { keys: { publicJwk: JWK }[] }).keys[0]!.publicJwk;
  walletId = await fundedWallet(t.api, "USD", "10.00");
});
afterAll(() => t.stop());

const nowS = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The claims a valid admin token carries; each case changes one thing. */
function claims(overrides: Record<string, unknown> = {}): JWTPayload {
  const all: Record<string, unknown> = { sub: "intruder", role: "admin", iss: TOKEN_SETTINGS.issuer, aud: TOKEN_SETTINGS.audience, iat: nowS(), exp: nowS() + 300, ...overrides };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
}

function sign(payload: JWTPayload, key: CryptoKey | Uint8Array = signingKey, header: Record<string, unknown> = { alg: "EdDSA", kid: "test-key" }): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key);
}

function flipSignatureChar(token: string): string {
  const [h, p, s] = token.split(".") as [string, string, string];
  // A middle character: the last one of a base64url signature may only carry padding bits.
  const i = 10;
  return `${h}.${p}.${s.slice(0, i)}${s[i] === "A" ? "B" : "A"}${s.slice(i + 1)}`;
}

/** A case is the request options that carry the bad credential. */
const BAD: [name: string, credential: () => Promise<ApiOptions>][] = [
  ["no Authorization header", async () => ({ token: null })],
  ["a Basic header", async () => ({ token: null, headers: { authorization: "Basic x" } })],
  ["the word Bearer with no token", async () => ({ token: null, headers: { authorization: "Bearer" } })],
  ["a Bearer header with two tokens", async () => ({ token: null, headers: { authorization: "Bearer a b" } })],
  ["a token with alg none and no signature", async () => ({ token: `${b64url({ alg: "none", typ: "JWT", kid: "test-key" })}.${b64url(claims())}.` })],
  ["HS256 signed with the public key's PEM as the secret", async () => ({ token: await sign(claims(), new TextEncoder().encode(await exportSPKI(publicKey)), { alg: "HS256", kid: "test-key" }) })],
  ["HS256 signed with the raw public key bytes as the secret", async () => ({ token: await sign(claims(), Buffer.from(publicJwk.x!, "base64url"), { alg: "HS256", kid: "test-key" }) })],
  ["a signature with one character changed", async () => ({ token: flipSignatureChar(await sign(claims())) })],
  ["a wrong audience", async () => ({ token: await sign(claims({ aud: "someone-else" })) })],
  ["a wrong issuer", async () => ({ token: await sign(claims({ iss: "evil" })) })],
  ["an expiry a minute ago (beyond the 5 s tolerance)", async () => ({ token: await sign(claims({ iat: nowS() - 600, exp: nowS() - 60 })) })],
  ["a not-before a minute ahead", async () => ({ token: await sign(claims({ nbf: nowS() + 60 })) })],
  ["no exp claim", async () => ({ token: await sign(claims({ exp: undefined })) })],
  ["no sub claim", async () => ({ token: await sign(claims({ sub: undefined })) })],
  ["an unknown kid", async () => ({ token: await sign(claims(), signingKey, { alg: "EdDSA", kid: "no-such-key" }) })],
  ["no kid", async () => ({ token: await sign(claims(), signingKey, { alg: "EdDSA" }) })],
  ["a role that does not exist", async () => ({ token: await sign(claims({ role: "superuser" })) })],
  ["no role", async () => ({ token: await sign(claims({ role: undefined })) })],
  ["a 5 KB token, validly signed", async () => ({ token: await sign(claims({ pad: "x".repeat(5000) })) })],
];

/** Read and write with this credential: both 401 with a challenge, and the database is untouched. */
async function expectRefused(t: TestNode, walletId: string, options: ApiOptions): Promise<void> {
  const before = await footprint(t.node.db);
  const read = await t.api("GET", `/v1/wallets/${walletId}`, undefined, options);
  const write = await t.api("POST", `/v1/wallets/${walletId}/credits`, { amount: "5.00" }, options);
  const create = await t.api("POST", "/v1/wallets", { ownerId: "intruder", asset: "USD" }, options);
  for (const res of [read, write, create]) {
    expectProblem(res, 401, "UNAUTHENTICATED");
    expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
  }
  expect(await footprint(t.node.db)).toEqual(before);
}

describe("refused credentials", () => {
  test("a token forged with the real key and the default claims is accepted (the cases below differ in one thing)", async () => {
    const res = await t.api("GET", `/v1/wallets/${walletId}`, undefined, { token: await sign(claims()) });
    expect(res.status).toBe(200);
  });

  for (const [name, credential] of BAD) {
    test(`${name} is 401 UNAUTHENTICATED and writes nothing`, async () => {
      await expectRefused(t, walletId, await credential());
    });
  }

  test("an expiry 2 s ago is still inside the clock tolerance", async () => {
    const res = await t.api("GET", `/v1/wallets/${walletId}`, undefined, { token: await sign(claims({ iat: nowS() - 600, exp: nowS() - 2 })) });
    expect(res.status).toBe(200);
  });

  test("/health answers without a token", async () => {
    const res = await t.api("GET", "/health", undefined, { token: null });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("ok");
  });

  test("an unknown route without a token is 401, not a route map", async () => {
    const res = await t.api("GET", "/v1/nothing-here", undefined, { token: null });
    expectProblem(res, 401, "UNAUTHENTICATED");
  });
});

/** A key file with two Ed25519 keys, "k-new" active (with its private key) and "k-old" as told. */
async function twoKeyFile(oldRetired: boolean, pairs: { old: KeyPair; next: KeyPair }): Promise<string> {
  const file = join(testDir("keys"), "jwt-keys.json");
  const keys = [
    { kid: "k-new", publicJwk: await exportJWK(pairs.next.publicKey), privateJwk: await exportJWK(pairs.next.privateKey) },
    { kid: "k-old", publicJwk: await exportJWK(pairs.old.publicKey), ...(oldRetired ? { retired: true } : {}) },
  ];
  await Bun.write(file, JSON.stringify({ active: "k-new", keys }));
  return file;
}

interface KeyPair {
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

describe("key rotation", () => {
  const make = () => generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  let pairs: { old: KeyPair; next: KeyPair };
  /** Old key retired; and old key still trusted while the new one is active. */
  let retiredNode: TestNode;
  let rotatedNode: TestNode;
  beforeAll(async () => {
    pairs = { old: await make(), next: await make() };
    retiredNode = await startTestNode("tokens-retired", { JWT_KEYS_FILE: await twoKeyFile(true, pairs) });
    rotatedNode = await startTestNode("tokens-rotated", { JWT_KEYS_FILE: await twoKeyFile(false, pairs) });
  });
  afterAll(async () => {
    await retiredNode?.stop();
    await rotatedNode?.stop();
  });

  const byOld = () => sign(claims(), pairs.old.privateKey, { alg: "EdDSA", kid: "k-old" });
  const byNew = () => sign(claims(), pairs.next.privateKey, { alg: "EdDSA", kid: "k-new" });

  test("a token signed by a retired key is 401 and writes nothing, while the active key's tokens work", async () => {
    const created = await retiredNode.api("POST", "/v1/wallets", { ownerId: "owner-1", asset: "USD" }, { token: await byNew() });
    expect(created.status).toBe(201);
    await expectRefused(retiredNode, created.body.id, { token: await byOld() });
  });

  test("a token signed by the old key keeps working after a new key becomes active, until the old key is retired", async () => {
    const created = await rotatedNode.api("POST", "/v1/wallets", { ownerId: "owner-1", asset: "USD" }, { token: await byOld() });
    expect(created.status).toBe(201);
    expect((await rotatedNode.api("GET", `/v1/wallets/${created.body.id}`, undefined, { token: await byNew() })).status).toBe(200);
  });

  test("a signature by one key does not pass under the other key's kid", async () => {
    const mislabelled = await sign(claims(), pairs.old.privateKey, { alg: "EdDSA", kid: "k-new" });
    expectProblem(await rotatedNode.api("GET", "/admin/verify", undefined, { token: mislabelled }), 401, "UNAUTHENTICATED");
  });

  test("a token from a key the node's key file does not hold is 401", async () => {
    expectProblem(await rotatedNode.api("GET", "/admin/verify", undefined, { token: await tokenFor() }), 401, "UNAUTHENTICATED");
  });
});
