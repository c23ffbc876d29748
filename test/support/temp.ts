import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Every folder the test support (or a test) makes for keys and stores lives under ONE folder per
 * test process, `<tmp>/coffer-test-<random>/`, which the preload (test/support/setup.ts) removes
 * after the last test. Bun runs no `exit` handlers at the end of `bun test`, so the removal is an
 * afterAll of the preload. The root is kept in the environment, not in this module, so every copy
 * of this module in the process (Bun's --isolate gives each file its own) finds the same one; it
 * carries the process id, so a child process that inherits the variable makes its own.
 */
const ROOT_VARIABLE = "COFFER_TEST_TMP_ROOT";

function ours(): string | undefined {
  const value = process.env[ROOT_VARIABLE];
  const [pid, path] = value ? [value.slice(0, value.indexOf(":")), value.slice(value.indexOf(":") + 1)] : [];
  return pid === String(process.pid) ? path : undefined;
}

function root(): string {
  const existing = ours();
  if (existing) return existing;
  const made = mkdtempSync(join(tmpdir(), "coffer-test-"));
  process.env[ROOT_VARIABLE] = `${process.pid}:${made}`;
  return made;
}

/** A fresh folder for this test process (removed with the rest after the run). */
export function testDir(label: string): string {
  return mkdtempSync(join(root(), `${label.replace(/[^a-z0-9-]/gi, "")}-`));
}

/** Remove every folder `testDir` made in this process. */
export function removeTestDirs(): void {
  const made = ours();
  if (!made) return;
  rmSync(made, { recursive: true, force: true });
  delete process.env[ROOT_VARIABLE];
}
