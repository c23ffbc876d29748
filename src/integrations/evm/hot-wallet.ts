import { Wallet } from "ethers";
import type { Keypair } from "@solana/web3.js";
import type { Db } from "../../../lib/db";
import type { Vault } from "../../security/encryption";
import { decodeSolanaSecretKey, encodeSolanaSecretKey, parseSolanaSecretKey } from "../solana/keys";

/** What kind of chain a hot wallet's key is for (the network's `kind` in NETWORKS_FILE). */
export type HotWalletKind = "evm" | "solana";

/** What is sealed: an EVM private key, or a Solana secret key (base58 of its 64 bytes). */
type SealedKey = { privateKey: string } | { kind: "solana"; secretKey: string };

/**
 * The hot wallet of each network: its private key sealed with the Vault (bound to the row's id)
 * in `hot_wallets`. Opened only to sign; never stored opened, printed or logged. EVM networks hold
 * a secp256k1 key (`signer`), Solana networks an ed25519 keypair (`solanaKeypair`); the address is
 * the chain's own form (checksummed 0x…, or the base58 public key).
 */
export class HotWallets {
  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
  ) {}

  /**
   * Stores the key for `network` (replacing any earlier one); returns its address. `kind` "solana"
   * takes base58 of the 64-byte secret key or a JSON array of 64 numbers.
   */
  async import(network: string, privateKey: string, kind: HotWalletKind = "evm"): Promise<string> {
    if (kind === "solana") {
      const keypair = parseSolanaSecretKey(privateKey);
      return this.store(network, keypair.publicKey.toBase58(), { kind: "solana", secretKey: encodeSolanaSecretKey(keypair) });
    }
    let wallet: Wallet;
    try {
      wallet = new Wallet(privateKey.trim());
    } catch {
      throw new Error("not a valid secp256k1 private key (expected 0x + 64 hex digits)");
    }
    return this.store(network, wallet.address, { privateKey: wallet.privateKey });
  }

  private async store(network: string, address: string, key: SealedKey): Promise<string> {
    const id = Bun.randomUUIDv7();
    const sealed = this.vault.seal(key, id);
    await this.db`insert into hot_wallets (id, network, address, sealed_key) values (${id}, ${network}, ${address}, ${this.db.json(sealed as never)})
      on conflict (network) do update set id = excluded.id, address = excluded.address, sealed_key = excluded.sealed_key, created_at = now()`;
    return address;
  }

  async address(network: string): Promise<string | undefined> {
    const [row] = await this.db`select address from hot_wallets where network = ${network}`;
    return row?.address as string | undefined;
  }

  async list(): Promise<{ network: string; address: string }[]> {
    return (await this.db`select network, address from hot_wallets order by network`) as unknown as { network: string; address: string }[];
  }

  /** The EVM signer of `network` (undefined without a key, or when its key is not an EVM one). */
  async signer(network: string): Promise<Wallet | undefined> {
    const key = await this.opened(network);
    return key && "privateKey" in key ? new Wallet(key.privateKey) : undefined;
  }

  /** The Solana keypair of `network` (undefined without a key, or when its key is not a Solana one). */
  async solanaKeypair(network: string): Promise<Keypair | undefined> {
    const key = await this.opened(network);
    return key && "secretKey" in key && key.kind === "solana" ? decodeSolanaSecretKey(key.secretKey) : undefined;
  }

  private async opened(network: string): Promise<SealedKey | undefined> {
    const [row] = await this.db`select id, sealed_key from hot_wallets where network = ${network}`;
    if (!row) return undefined;
    return this.vault.open<SealedKey>(row.sealed_key, row.id as string);
  }
}
