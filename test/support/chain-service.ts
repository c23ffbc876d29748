import { expect } from "bun:test";
import { join } from "node:path";
import { ensureVaultFile } from "../../src/security/encryption";
import { testNodeEnv, type ApiResponse } from "./node";
import type { ServiceProcess } from "./process";
import { testDir } from "./temp";

/**
 * What the chain crash suites (test/chaos/chain-kill.test.ts, solana-kill.test.ts) share: a real
 * service configured with a NETWORKS_FILE, its hot wallet imported the operator's way, armed to
 * kill itself at a crash point (src/crash.ts), and asked for its withdrawals all at once.
 */

/** A NETWORKS_FILE and a vault file in a fresh test folder: the env every service and the CLI of a suite get. */
export async function chainServiceEnv(label: string, networks: Record<string, unknown>): Promise<Record<string, string>> {
  const dir = testDir(label);
  const networksFile = join(dir, "networks.json");
  await Bun.write(networksFile, JSON.stringify(networks));
  const vaultFile = join(dir, "encryption-keys.json");
  await ensureVaultFile(vaultFile);
  return { NETWORKS_FILE: networksFile, ENCRYPTION_KEYS_FILE: vaultFile };
}

/** `bun run coffer hot-wallet import` (the key on stdin; the CLI migrates the fresh database first); returns the line it printed. */
export async function importHotWallet(databaseUrl: string, env: Record<string, string>, network: string, secret: string): Promise<string> {
  const proc = Bun.spawn(["bun", "src/cli/coffer.ts", "hot-wallet", "import", "--network", network], {
    cwd: new URL("../..", import.meta.url).pathname,
    env: { ...process.env, ...(await testNodeEnv(env)), DATABASE_URL: databaseUrl },
    stdin: new TextEncoder().encode(`${secret}\n`),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`hot-wallet import exited ${code}: ${err}`);
  return out.trim();
}

/** The process died by its own SIGKILL (the crash point) within `timeoutMs`; otherwise the failure shows `seen()` and its output. */
export async function killedItself(svc: ServiceProcess, point: string, timeoutMs: number, seen: () => Promise<unknown>): Promise<void> {
  const exited = await Promise.race([svc.proc.exited.then(() => true), Bun.sleep(timeoutMs).then(() => false)]);
  if (!exited) {
    throw new Error(`the service armed at ${point} did not kill itself within ${timeoutMs} ms; its payouts: ${JSON.stringify(await seen())}\n${svc.output()}`);
  }
  expect(svc.proc.signalCode).toBe("SIGKILL");
}

/**
 * The withdrawals, all at once, to a service that will kill itself when its worker reaches the
 * crash point: a request the death cut off is answered or not (undefined); it is sent again
 * (same key) later. Any answer but 201 fails.
 */
export async function requestAll<P>(planned: P[], withdraw: (p: P) => Promise<ApiResponse>): Promise<(string | undefined)[]> {
  return Promise.all(
    planned.map(async (p) => {
      const res = await withdraw(p).catch(() => undefined);
      if (res && res.status !== 201) throw new Error(`withdrawal refused: ${res.status} ${JSON.stringify(res.body)}`);
      return res?.body.id as string | undefined;
    }),
  );
}
