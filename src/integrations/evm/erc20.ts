import { getAddress, Interface, ZeroAddress } from "ethers";

/**
 * ERC-20 (EIP-20) as the chain payout worker needs it: the calldata of `transfer(address,uint256)`
 * (a token payout is a transaction to the token's contract, value 0, with this data), the Transfer
 * events a receipt carries (what a payout actually moved, checked against what it should have), and
 * `balanceOf` (the hot wallet's token runway). Encoding and decoding are ethers' ABI coder; amounts
 * are bigint in the token's smallest unit (USDC: 6 decimals), never numbers.
 */
export const ERC20_ABI = [
  "function transfer(address to, uint256 value) returns (bool)",
  "function balanceOf(address owner) view returns (uint256)",
  "function decimals() view returns (uint8)",
  "event Transfer(address indexed from, address indexed to, uint256 value)",
] as const;

export const erc20Interface = new Interface(ERC20_ABI);

/** keccak256("Transfer(address,address,uint256)"): topic 0 of every ERC-20 (and ERC-721) Transfer log. */
export const TRANSFER_TOPIC = erc20Interface.getEvent("Transfer")!.topicHash;

const MAX_UINT256 = (1n << 256n) - 1n;

/**
 * The data of `transfer(to, amountMinor)`. Refuses (throws) what no payout should send: an amount
 * that is not positive or does not fit a uint256, an address that is not one (a mixed-case address
 * must match its EIP-55 checksum), and the zero address (tokens sent there are burnt).
 */
export function encodeTransfer(to: string, amountMinor: bigint): string {
  if (typeof amountMinor !== "bigint" || amountMinor <= 0n || amountMinor > MAX_UINT256) {
    throw new RangeError(`an ERC-20 transfer amount must be a positive uint256 (minor units), got ${String(amountMinor)}`);
  }
  const recipient = getAddress(to);
  if (recipient === ZeroAddress) throw new RangeError("an ERC-20 transfer to the zero address burns the tokens");
  return erc20Interface.encodeFunctionData("transfer", [recipient, amountMinor]);
}

/** The recipient and amount of `transfer` calldata (what a stored raw transaction pays); throws on any other data. */
export function decodeTransfer(data: string): { to: string; amountMinor: bigint } {
  const [to, amount] = erc20Interface.decodeFunctionData("transfer", data);
  return { to: getAddress(to as string), amountMinor: amount as bigint };
}

/** A log as JSON-RPC's eth_getTransactionReceipt gives it (only what is read here). */
export interface ReceiptLog {
  address: string;
  topics: readonly string[];
  data: string;
  logIndex?: string;
  removed?: boolean;
}

export interface TransferLog {
  from: string;
  to: string;
  amountMinor: bigint;
  /** The log's index in its block, when the receipt says (a hex quantity there, a number here). */
  logIndex?: number;
}

/**
 * The ERC-20 Transfer events `token` emitted in this receipt, in log order, addresses checksummed.
 * Logs of other contracts are not the token's (anyone can emit an event named Transfer), ERC-721
 * Transfers (tokenId indexed: four topics) are not ERC-20 ones, and logs marked `removed` were
 * reorged out. A reverted transaction has no logs, so it yields none. A log of the token that
 * claims to be a Transfer but is malformed throws: that contract is not the ERC-20 it was said to be.
 */
export function decodeTransferLogs(receipt: { logs: readonly ReceiptLog[] }, token: string): TransferLog[] {
  const contract = getAddress(token);
  const out: TransferLog[] = [];
  for (const log of receipt.logs) {
    if (log.removed) continue;
    if (log.topics[0]?.toLowerCase() !== TRANSFER_TOPIC || log.topics.length !== 3) continue;
    if (getAddress(log.address) !== contract) continue;
    for (const topic of log.topics.slice(1)) {
      if (!/^0x0{24}[0-9a-fA-F]{40}$/.test(topic)) throw new Error(`token ${contract} logged a Transfer whose address topic is not an address: ${topic}`);
    }
    if (!/^0x[0-9a-fA-F]{64}$/.test(log.data)) throw new Error(`token ${contract} logged a Transfer whose data is not one uint256`);
    const decoded = erc20Interface.decodeEventLog("Transfer", log.data, log.topics);
    out.push({
      from: getAddress(decoded[0] as string),
      to: getAddress(decoded[1] as string),
      amountMinor: decoded[2] as bigint,
      ...(log.logIndex !== undefined ? { logIndex: Number(BigInt(log.logIndex)) } : {}),
    });
  }
  return out;
}

/** The data of `balanceOf(holder)`, for an eth_call to the token's contract. */
export function balanceOfCall(holder: string): string {
  return erc20Interface.encodeFunctionData("balanceOf", [getAddress(holder)]);
}

/** The answer of `balanceOf` (eth_call's result) as minor units; throws on anything but one uint256 ("0x" is what a call to an address without code answers). */
export function decodeBalanceOf(result: string): bigint {
  if (!/^0x[0-9a-fA-F]{64}$/.test(result)) throw new Error(`balanceOf answered ${result.length > 70 ? `${result.slice(0, 70)}…` : result}, not one uint256 (is the token address a contract?)`);
  const [balance] = erc20Interface.decodeFunctionResult("balanceOf", result);
  return balance as bigint;
}

/** Anything that sends a JSON-RPC call (RpcClient, a test's Anvil). */
export interface Caller {
  call<T = unknown>(method: string, params?: unknown[]): Promise<T>;
}

/** `holder`'s balance of `token` at `blockTag`, in the token's minor units. */
export async function readBalanceOf(rpc: Caller, token: string, holder: string, blockTag = "latest"): Promise<bigint> {
  return decodeBalanceOf(await rpc.call<string>("eth_call", [{ to: getAddress(token), data: balanceOfCall(holder) }, blockTag]));
}
