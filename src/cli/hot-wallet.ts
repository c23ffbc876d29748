import { parseArgs } from "node:util";
import { loadConfig } from "../config";
import { connect } from "../../lib/db";
import { startEmbeddedPostgres } from "../db/embedded";
import { migrate } from "../db/migrate";
import { loadNetworks } from "../integrations/chain/config";
import { HotWallets } from "../integrations/evm/hot-wallet";
import { RpcClient } from "../integrations/evm/rpc";
import { SolanaRpc } from "../integrations/solana/rpc";
import { PublicKey } from "@solana/web3.js";
import { Vault } from "../security/encryption";

/**
 * `bun run coffer hot-wallet import --network NAME` (the private key on stdin: never an argument,
 * never printed; for a Solana network, base58 of the 64-byte secret key or the JSON array of 64
 * numbers `solana-keygen` writes) and `bun run coffer hot-wallet show` (each network's address, and
 * its balance in wei or lamports when the network's RPC answers).
 */
const USAGE = `usage: bun run coffer hot-wallet import --network NAME   (private key on stdin)
       bun run coffer hot-wallet show`;

export async function runHotWallet(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  let network: string | undefined;
  try {
    const { values } = parseArgs({ args: rest, options: { network: { type: "string" } }, strict: true });
    network = values.network;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (sub !== "import" && sub !== "show") {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const config = loadConfig();
  const networks = await loadNetworks(config.NETWORKS_FILE);
  if (sub === "import" && (!network || !networks[network])) {
    process.stderr.write(`hot-wallet: --network must name a network of NETWORKS_FILE (${Object.keys(networks).join(", ") || "none configured"})\n`);
    return 2;
  }
  const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres(config.COFFER_HOME, () => {});
  const url = config.DATABASE_URL ?? embedded!.url;
  const db = connect(url, 2, { statement_ms: 0, lock_ms: 5_000 });
  try {
    await migrate(db);
    const wallets = new HotWallets(db, await Vault.load(config.vaultFile));
    if (sub === "import") {
      const key = (await Bun.stdin.text()).trim();
      try {
        const address = await wallets.import(network!, key, networks[network!]!.kind);
        console.log(`${network}: ${address}`);
        return 0;
      } catch (error) {
        process.stderr.write(`hot-wallet: ${(error as Error).message}\n`);
        return 2;
      }
    }
    for (const { network: name, address } of await wallets.list()) {
      const n = networks[name];
      let balance = "";
      if (n) {
        try {
          if (n.kind === "solana") {
            const lamports = await new SolanaRpc(n.rpcUrls, 3_000).call("getBalance", (c) => c.getBalance(new PublicKey(address), "confirmed"));
            balance = ` ${BigInt(lamports)} lamports`;
          } else {
            const wei = BigInt(await new RpcClient(n.rpcUrls, 3_000).call<string>("eth_getBalance", [address, "latest"]));
            balance = ` ${wei} wei`;
          }
        } catch {
          balance = " (balance: rpc did not answer)";
        }
      }
      console.log(`${name}: ${address}${balance}`);
    }
    return 0;
  } finally {
    await db.end();
    await embedded?.stop();
  }
}
