import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { HDNodeWallet } from "ethers";

/**
 * A real Anvil (Foundry's local Ethereum node) for the chain tests, from the
 * `@foundry-rs/anvil-linux-amd64` package (a plain `bun install` brings it): a free port, a chain id,
 * the well-known test mnemonic's accounts (each with 10 000 ETH), no automatic mining unless asked
 * (`blockTime`), and `stop()` to end it.
 */
export const ANVIL_MNEMONIC = "test test test test test test test test test test test junk";
/** Account `index` of ANVIL_MNEMONIC (public test keys: never hold real money with them). */
export function anvilAccount(index: number): { address: string; privateKey: string } {
  const w = HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return { address: w.address, privateKey: w.privateKey };
}

export interface Anvil {
  url: string;
  port: number;
  chainId: number;
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  mine(blocks?: number): Promise<void>;
  stop(): Promise<void>;
}

function binary(): string {
  const path = join(import.meta.dir, "../../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
  if (!existsSync(path)) throw new Error(`no anvil binary at ${path}: run bun install`);
  return path;
}

async function freePort(): Promise<number> {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port!;
  await server.stop(true);
  return port;
}

export async function rpcCall<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

export async function startAnvil(options: { chainId?: number; automine?: boolean; timeoutMs?: number } = {}): Promise<Anvil> {
  const chainId = options.chainId ?? 31337;
  const port = await freePort();
  const args = [binary(), "--port", String(port), "--host", "127.0.0.1", "--chain-id", String(chainId), "--mnemonic", ANVIL_MNEMONIC, "--accounts", "3", "--silent"];
  if (options.automine === false) args.push("--no-mining");
  const proc: Subprocess = Bun.spawn(args, { stdout: "ignore", stderr: "pipe" });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    try {
      await rpcCall(url, "eth_chainId");
      break;
    } catch {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`anvil did not start on port ${port} (exit ${proc.exitCode})`);
      }
      await Bun.sleep(50);
    }
  }
  return {
    url,
    port,
    chainId,
    rpc: (method, params) => rpcCall(url, method, params),
    async mine(blocks = 1) {
      await rpcCall(url, "anvil_mine", [`0x${blocks.toString(16)}`]);
    },
    async stop() {
      proc.kill("SIGTERM");
      const ended = await Promise.race([proc.exited.then(() => true), Bun.sleep(3_000).then(() => false)]);
      if (!ended) proc.kill("SIGKILL");
    },
  };
}
