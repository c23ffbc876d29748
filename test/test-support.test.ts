import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADMIN, claimNode, describeBudget, FILE_CLIENTS, NODES_AT_ONCE, nodesAlive, perProcess, POOL_PER_NODE } from "./support/budget";

/**
 * What the test support promises the machine it runs on: a bounded share of the shared Postgres
 * (test/support/budget.ts), and no folder left behind in the temp dir (test/support/temp.ts).
 */
const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURE = "./test/support/fixtures/temp-dirs.fixture.ts";

describe("the connection budget", () => {
  test("is the pools of the nodes that may run at once, a file's own clients and the admin's, well under a shared server's 100", () => {
    expect(perProcess).toBe(POOL_PER_NODE * NODES_AT_ONCE + FILE_CLIENTS + ADMIN);
    expect(NODES_AT_ONCE).toBeGreaterThanOrEqual(3); // the cluster suites run three nodes
    expect(perProcess).toBeLessThanOrEqual(40);
  });

  test("a server with fewer free connections than the budget is not enough, and the line says what it has", () => {
    const short = describeBudget({ max: 100, reserved: 3, inUse: 80, free: 17 }, 1);
    expect(short.enough).toBe(false);
    expect(short.line).toBe(
      `test connection budget: ${POOL_PER_NODE} per node × ${NODES_AT_ONCE} nodes at once + ${FILE_CLIENTS} for a file's own clients + ${ADMIN} admin = ${perProcess} of max_connections 100 (server reports 80 in use, 3 reserved, 17 free)`,
    );
    expect(describeBudget({ max: 100, reserved: 3, inUse: 40, free: 57 }, 1).enough).toBe(true);
    // `bun test --parallel=4`: four files at once, each with the whole budget.
    const parallel = describeBudget({ max: 100, reserved: 3, inUse: 40, free: 57 }, 4);
    expect(parallel).toMatchObject({ total: perProcess * 4, enough: false });
    expect(parallel.line).toContain(`× 4 files at once = ${perProcess * 4}`);
  });

  test("a node more than the budget allows at once is refused, naming the ones alive", () => {
    const before = nodesAlive();
    const releases = Array.from({ length: NODES_AT_ONCE - before }, (_, i) => claimNode(`node-${i}`));
    try {
      expect(() => claimNode("one too many")).toThrow(`at most ${NODES_AT_ONCE} nodes at once`);
      expect(() => claimNode("one too many")).toThrow("node-0");
    } finally {
      for (const release of releases) release();
    }
    expect(nodesAlive()).toBe(before);
    claimNode("once more")(); // room again, and a release twice is harmless
  });
});

describe("temporary folders", () => {
  test("a `bun test` run removes every temporary folder its support made", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "coffer-tempcheck-"));
    try {
      const env: Record<string, string | undefined> = { ...process.env, TMPDIR: tmp };
      delete env.COFFER_TEST_TMP_ROOT;
      const proc = Bun.spawn(["bun", "test", FIXTURE], { cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      const output = `${stdout}\n${stderr}`;
      expect({ code, output }).toMatchObject({ code: 0 });
      // While it ran, its folders were there (one root folder holding them)...
      expect(output).toMatch(/made: \["coffer-test-[^"]+"\]/);
      // ...and when it had ended, nothing of ours was left.
      expect(readdirSync(tmp).filter((name) => name.startsWith("coffer-"))).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
