import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import { testKeys } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "./support";

/**
 * `bun run coffer token`: the operator's way to mint an access token from the configured key file.
 * Run as a real subprocess, exactly as an operator would.
 */
const ROOT = new URL("../..", import.meta.url).pathname;

async function coffer(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(["bun", "run", "coffer", ...args], {
    cwd: ROOT,
    env: { ...process.env, JWT_KEYS_FILE: (await testKeys()).file },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("cli");
});
afterAll(() => t.stop());

describe("coffer token", () => {
  test("prints an admin token that a node accepts, valid for the --ttl asked", async () => {
    const run = await coffer("token", "--sub", "x", "--role", "admin", "--ttl", "60");
    expect(run.code).toBe(0);
    const token = run.stdout.trim();
    expect(run.stderr).not.toContain(token); // stdout only: stderr is where `bun run` echoes the command
    expect(token.split(".")).toHaveLength(3);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: "x", role: "admin", iss: "coffer", aud: "coffer-api" });
    expect(claims.exp! - claims.iat!).toBe(60);
    expect((await t.api("GET", "/admin/verify", undefined, { token })).status).toBe(200);
  });

  test("a service token carries its --perm list: it may pay but not credit", async () => {
    const run = await coffer("token", "--sub", "svc-cli", "--role", "service", "--perm", "payments:write", "--perm", "wallets:read");
    expect(run.code).toBe(0);
    const token = run.stdout.trim();
    expect(decodeJwt(token).perms).toEqual(["payments:write", "wallets:read"]);
    const wallet = await t.api("POST", "/v1/wallets", { ownerId: "owner-1", asset: "USD" });
    await t.api("POST", `/v1/wallets/${wallet.body.id}/credits`, { amount: "5.00" });
    expect((await t.api("POST", `/v1/wallets/${wallet.body.id}/payments`, { amount: "1.00" }, { token })).status).toBe(201);
    expectProblem(await t.api("POST", `/v1/wallets/${wallet.body.id}/credits`, { amount: "1.00" }, { token }), 403, "FORBIDDEN");
  });

  const BAD_ARGUMENTS: [name: string, args: string[]][] = [
    ["an unknown role", ["token", "--sub", "x", "--role", "root"]],
    ["a missing --sub", ["token", "--role", "admin"]],
    ["a missing --role", ["token", "--sub", "x"]],
    ["--ttl 0", ["token", "--sub", "x", "--role", "admin", "--ttl", "0"]],
    ["--ttl that is not a number", ["token", "--sub", "x", "--role", "admin", "--ttl", "soon"]],
    ["an unknown --perm", ["token", "--sub", "x", "--role", "service", "--perm", "everything:write"]],
    ["an unknown flag", ["token", "--sub", "x", "--role", "admin", "--forever"]],
    ["--ttl with no value", ["token", "--sub", "x", "--role", "admin", "--ttl"]],
    ["an unknown command", ["tokens", "--sub", "x", "--role", "admin"]],
  ];

  for (const [name, args] of BAD_ARGUMENTS) {
    test(`${name} exits with code 2, prints the usage and no token (and no stack trace)`, async () => {
      const run = await coffer(...args);
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 2, stdout: "" });
      expect(run.stderr).toContain("usage: bun run coffer token");
      expect(run.stderr).not.toMatch(/\n\s+at |Error:/);
    });
  }
});
