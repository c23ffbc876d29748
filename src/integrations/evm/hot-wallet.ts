import { Wallet } from "ethers";
import type { Db } from "../../../lib/db";
import type { Vault } from "../../security/encryption";

/**
 * The hot wallet of each network: its private key sealed with the Vault (bound to the row's id)
 * in `hot_wallets`. Opened only to sign; never stored opened, printed or logged.
 */
export class HotWallets {
  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
  ) {}

  /** Stores the key for `network` (replacing any earlier one); returns its address. */
  async import(network: string, privateKey: string): Promise<string> {
    let wallet: Wallet;
    try {
      wallet = new Wallet(privateKey.trim());
    } catch {
      throw new Error("not a valid secp256k1 private key (expected 0x + 64 hex digits)");
    }
    const id = Bun.randomUUIDv7();
    const sealed = this.vault.seal({ privateKey: wallet.privateKey }, id);
    await this.db`insert into hot_wallets (id, network, address, sealed_key) values (${id}, ${network}, ${wallet.address}, ${this.db.json(sealed as never)})
      on conflict (network) do update set id = excluded.id, address = excluded.address, sealed_key = excluded.sealed_key, created_at = now()`;
    return wallet.address;
  }

  async address(network: string): Promise<string | undefined> {
    const [row] = await this.db`select address from hot_wallets where network = ${network}`;
    return row?.address as string | undefined;
  }

  async list(): Promise<{ network: string; address: string }[]> {
    return (await this.db`select network, address from hot_wallets order by network`) as unknown as { network: string; address: string }[];
  }

  async signer(network: string): Promise<Wallet | undefined> {
    const [row] = await this.db`select id, sealed_key from hot_wallets where network = ${network}`;
    if (!row) return undefined;
    const { privateKey } = this.vault.open<{ privateKey: string }>(row.sealed_key, row.id as string);
    return new Wallet(privateKey);
  }
}
