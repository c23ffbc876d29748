import { ContractFactory, getAddress, Interface, Wallet } from "ethers";
import { balanceOfCall, decodeBalanceOf, encodeTransfer } from "../../src/integrations/evm/erc20";
import { anvilAccount, type Anvil } from "./anvil";
import artifact from "./contracts/TestUSDC.json";

/**
 * A real ERC-20 on a test's Anvil: TestUSDC.sol (test/support/contracts/), compiled by solc-js into
 * the committed TestUSDC.json (rebuilt with `bun test/support/contracts/build.ts`; a test fails when
 * the two differ). Transactions are signed here with ethers and sent raw; on an Anvil that mines
 * each transaction as it arrives (the default) the receipt is there when the send returns, and on
 * one started with `automine: false` these helpers mine one block to include their transaction.
 *
 * The default deployer (and minter) is anvilAccount(2), not account 0: the chain tests import
 * account 0 as the hot wallet, and a transaction from it that the payout worker did not sign would
 * be nonce drift it must report.
 */
export const testUsdc = artifact as { abi: unknown[]; bytecode: string; compiler: { version: string } };
export const testUsdcInterface = new Interface(testUsdc.abi as ConstructorParameters<typeof Interface>[0]);

export type Signer = { address: string; privateKey: string };

export interface Erc20Options {
  name?: string;
  symbol?: string;
  /** 6 unless told: test USDC. */
  decimals?: number;
  /** Minted to `mintTo` right after deployment (by the deployer, the token's only minter). */
  mintTo?: string;
  mintAmount?: bigint;
  deployer?: Signer;
}

/** A receipt as JSON-RPC gives it. */
export interface RpcReceipt {
  transactionHash: string;
  status: "0x1" | "0x0";
  blockNumber: string;
  blockHash: string;
  gasUsed: string;
  contractAddress: string | null;
  logs: { address: string; topics: string[]; data: string; logIndex: string; removed?: boolean }[];
}

export const DEFAULT_DEPLOYER = anvilAccount(2);

/** Deploy TestUSDC (and mint, if asked); returns its address (checksummed). */
export async function deployErc20(anvil: Anvil, options: Erc20Options = {}): Promise<string> {
  const deployer = options.deployer ?? DEFAULT_DEPLOYER;
  const factory = new ContractFactory(testUsdc.abi as ConstructorParameters<typeof ContractFactory>[0], testUsdc.bytecode);
  const deploy = await factory.getDeployTransaction(options.name ?? "Test USD Coin", options.symbol ?? "USDC", options.decimals ?? 6);
  const receipt = await sendTransaction(anvil, deployer, { data: deploy.data });
  if (receipt.status !== "0x1" || !receipt.contractAddress) throw new Error(`TestUSDC deployment reverted (${receipt.transactionHash})`);
  const token = getAddress(receipt.contractAddress);
  if ((await anvil.rpc<string>("eth_getCode", [token, "latest"])) === "0x") throw new Error(`no code at ${token} after deployment`);
  if (options.mintTo !== undefined && (options.mintAmount ?? 0n) > 0n) {
    const minted = await erc20Mint(anvil, token, options.mintTo, options.mintAmount!, deployer);
    if (minted.status !== "0x1") throw new Error(`minting to ${options.mintTo} reverted`);
  }
  return token;
}

/** `holder`'s balance of `token`, in minor units. */
export async function erc20BalanceOf(anvil: Anvil, token: string, holder: string, blockTag = "latest"): Promise<bigint> {
  return decodeBalanceOf(await anvil.rpc<string>("eth_call", [{ to: token, data: balanceOfCall(holder) }, blockTag]));
}

/**
 * `from` sends `amount` of `token` to `to`; the receipt, which may say `0x0` (reverted). With
 * `gasLimit` the transaction is sent without estimating (an estimate of a transfer that would
 * revert fails, so a test of a reverted transfer gives one).
 */
export async function erc20Transfer(anvil: Anvil, token: string, from: Signer, to: string, amount: bigint, options: { gasLimit?: bigint } = {}): Promise<RpcReceipt> {
  return sendTransaction(anvil, from, { to: token, data: encodeTransfer(to, amount), ...options });
}

/** The deployer mints `amount` to `to` (anyone else's mint reverts: pass `gasLimit` to see it mined). */
export async function erc20Mint(anvil: Anvil, token: string, to: string, amount: bigint, minter: Signer = DEFAULT_DEPLOYER, options: { gasLimit?: bigint } = {}): Promise<RpcReceipt> {
  return sendTransaction(anvil, minter, { to: token, data: testUsdcInterface.encodeFunctionData("mint", [to, amount]), ...options });
}

/** Call a view function of the token (`name`, `symbol`, `decimals`, `totalSupply`, `allowance`, …) and decode its single answer. */
export async function erc20Read<T = unknown>(anvil: Anvil, token: string, fn: string, args: unknown[] = []): Promise<T> {
  const result = await anvil.rpc<string>("eth_call", [{ to: token, data: testUsdcInterface.encodeFunctionData(fn, args) }, "latest"]);
  return testUsdcInterface.decodeFunctionResult(fn, result)[0] as T;
}

/**
 * Sign an EIP-1559 transaction from `signer` (its pending nonce, twice the base fee plus a 1 gwei
 * tip, gas estimated unless given) and send it; its receipt once mined. The nonce is the node's
 * pending count, so send from one signer one at a time (await each).
 */
export async function sendTransaction(anvil: Anvil, signer: Signer, tx: { to?: string; data?: string; value?: bigint; gasLimit?: bigint }): Promise<RpcReceipt> {
  const from = getAddress(signer.address);
  const [nonce, block] = await Promise.all([
    anvil.rpc<string>("eth_getTransactionCount", [from, "pending"]),
    anvil.rpc<{ baseFeePerGas: string }>("eth_getBlockByNumber", ["latest", false]),
  ]);
  const call = { from, ...(tx.to ? { to: tx.to } : {}), ...(tx.data ? { data: tx.data } : {}), ...(tx.value ? { value: `0x${tx.value.toString(16)}` } : {}) };
  const gasLimit = tx.gasLimit ?? (BigInt(await anvil.rpc<string>("eth_estimateGas", [call])) * 12n) / 10n;
  const tip = 1_000_000_000n;
  const raw = await new Wallet(signer.privateKey).signTransaction({
    type: 2,
    chainId: anvil.chainId,
    nonce: Number(BigInt(nonce)),
    to: tx.to ?? null,
    data: tx.data ?? "0x",
    value: tx.value ?? 0n,
    gasLimit,
    maxPriorityFeePerGas: tip,
    maxFeePerGas: BigInt(block.baseFeePerGas) * 2n + tip,
  });
  const hash = await anvil.rpc<string>("eth_sendRawTransaction", [raw]);
  let receipt = await anvil.rpc<RpcReceipt | null>("eth_getTransactionReceipt", [hash]);
  if (!receipt) {
    await anvil.mine(1);
    receipt = await anvil.rpc<RpcReceipt | null>("eth_getTransactionReceipt", [hash]);
  }
  if (!receipt) throw new Error(`transaction ${hash} was not mined`);
  return receipt;
}
