import { FailedTransactionMetadata, LiteSVM } from "litesvm";
import { PublicKey, VersionedTransaction } from "@solana/web3.js";
import { base58, base64 } from "@scure/base";

/**
 * A real Solana runtime for the chain tests: LiteSVM (the `litesvm` package: the Solana SVM, its
 * System program, signature checks and fees, in process) behind a small JSON-RPC server that
 * `@solana/web3.js`'s `Connection` talks to. No validator can be installed here, so the cluster
 * around the runtime is modelled by this file, under the test's control:
 *
 * - Blocks: `advance(n)` makes n empty blocks (slot and block height +1 each, a new blockhash each).
 *   Nothing happens on its own: no clock, no background timer.
 * - Landing: `sendTransaction` only queues a transaction (`pending()`); `land()` makes one block with
 *   every queued transaction, `drop()` loses them (a transaction the leader never got).
 * - Blockhash expiry, as the cluster does it: a blockhash made at height h is valid up to
 *   `lastValidBlockHeight` = h + 150; a queued transaction whose blockhash is unknown or past it when
 *   its block is made is dropped, never executed. The runtime's own blockhash check is off because
 *   this file does it (LiteSVM knows only its newest blockhash).
 * - Finality: a block is `confirmed` once `confirmDepth` blocks are on top of it and `finalized`
 *   once `finality` blocks are; `getBlockHeight`, `getSlot` and `getLatestBlockhash` answer for the
 *   commitment asked (default finalized, as the real RPC does).
 * - A transaction lands (its signature has a status) when it ran or when it failed after paying its
 *   fee (the runtime charged the fee payer); one refused before the fee (no funds for the fee, a bad
 *   signature, a duplicate) never lands.
 * - `unresponsive = true` makes the server hold every request without answering (an RPC that does
 *   not answer) until it is set back or the server stops.
 *
 * Lamports leave JSON as numbers (as the real RPC does); every amount in the tests fits.
 */
export const MAX_PROCESSING_AGE = 150n;
/** What LiteSVM charges per signature (the cluster's default `lamportsPerSignature`). */
export const LAMPORTS_PER_SIGNATURE = 5_000n;

export type Commitment = "processed" | "confirmed" | "finalized";

interface Block {
  slot: bigint;
  height: bigint;
  blockhash: string;
}

export interface Landed {
  signature: string;
  slot: bigint;
  height: bigint;
  err: unknown;
  fee: bigint;
  tx: VersionedTransaction;
  preBalances: bigint[];
  postBalances: bigint[];
}

interface Pending {
  signature: string;
  tx: VersionedTransaction;
}

export interface SolanaChainOptions {
  /** Blocks on top of a block before it is finalized (default 8). */
  finality?: number;
  /** Blocks on top of a block before it is confirmed (default 1). */
  confirmDepth?: number;
}

export interface SolanaChain {
  url: string;
  svm: LiteSVM;
  /** The block height at this commitment (default processed: the newest block). */
  height(commitment?: Commitment): bigint;
  slot(commitment?: Commitment): bigint;
  airdrop(address: string | PublicKey, lamports: bigint): void;
  balance(address: string | PublicKey): bigint;
  /** Signatures sent and not yet landed or dropped, oldest first. */
  pending(): string[];
  /** How many times `sendTransaction` was given this signature. */
  sends(signature: string): number;
  /** Every landed transaction (successful or failed), oldest first. */
  landed(): Landed[];
  status(signature: string): Landed | undefined;
  /** One block with every pending transaction; says which landed and which were dropped (expired or refused). */
  land(): { landed: string[]; dropped: string[] };
  /** Loses every pending transaction (the leader never got them). */
  drop(): string[];
  /** `blocks` empty blocks; pending transactions stay pending. */
  advance(blocks?: number): void;
  /** Requests answered per method. */
  calls: Map<string, number>;
  unresponsive: boolean;
  stop(): Promise<void>;
}

export async function startSolana(options: SolanaChainOptions = {}): Promise<SolanaChain> {
  const finality = BigInt(options.finality ?? 8);
  const confirmDepth = BigInt(options.confirmDepth ?? 1);
  const svm = new LiteSVM().withBlockhashCheck(false).withTransactionHistory(10_000n);
  const blocks: Block[] = [];
  const byHash = new Map<string, Block>();
  const landedBySig = new Map<string, Landed>();
  const landedList: Landed[] = [];
  let pending: Pending[] = [];
  const sendCounts = new Map<string, number>();
  const calls = new Map<string, number>();

  const tip = () => blocks[blocks.length - 1]!;
  const depth = (c: Commitment = "finalized") => (c === "processed" ? 0n : c === "confirmed" ? confirmDepth : finality);
  const at = (c?: Commitment): Block => blocks[Math.max(0, blocks.length - 1 - Number(depth(c)))]!;

  function makeBlock(): Block {
    const previous = blocks[blocks.length - 1];
    const slot = previous ? previous.slot + 1n : 0n;
    if (previous) {
      svm.expireBlockhash();
      svm.warpToSlot(slot);
    }
    const block = { slot, height: previous ? previous.height + 1n : 0n, blockhash: svm.latestBlockhash() };
    blocks.push(block);
    byHash.set(block.blockhash, block);
    return block;
  }
  // Enough history for every commitment to have a block of its own.
  for (let i = 0n; i <= finality + 1n; i++) makeBlock();

  function key(address: string | PublicKey): PublicKey {
    return typeof address === "string" ? new PublicKey(address) : address;
  }

  function balanceOf(address: PublicKey): bigint {
    return svm.getBalance(address) ?? 0n;
  }

  function commitmentOf(landed: Landed): Commitment {
    const on = tip().height - landed.height;
    return on >= finality ? "finalized" : on >= confirmDepth ? "confirmed" : "processed";
  }

  function meets(landed: Landed, wanted: Commitment): boolean {
    const order: Commitment[] = ["processed", "confirmed", "finalized"];
    return order.indexOf(commitmentOf(landed)) >= order.indexOf(wanted);
  }

  function land(): { landed: string[]; dropped: string[] } {
    const block = makeBlock();
    const out = { landed: [] as string[], dropped: [] as string[] };
    const batch = pending;
    pending = [];
    for (const { signature, tx } of batch) {
      if (landedBySig.has(signature)) continue;
      const made = byHash.get(tx.message.recentBlockhash);
      if (!made || made.height + MAX_PROCESSING_AGE < block.height) {
        out.dropped.push(signature); // blockhash unknown or expired: the cluster never executes it
        continue;
      }
      const keys = tx.message.staticAccountKeys;
      const preBalances = keys.map(balanceOf);
      const result = svm.sendTransaction(tx);
      const postBalances = keys.map(balanceOf);
      const failed = result instanceof FailedTransactionMetadata;
      // A failure that did not charge the fee payer was refused before execution: it never landed.
      if (failed && postBalances[0]! >= preBalances[0]!) {
        out.dropped.push(signature);
        continue;
      }
      const landed: Landed = {
        signature,
        slot: block.slot,
        height: block.height,
        err: failed ? errorJson(result.err()) : null,
        fee: LAMPORTS_PER_SIGNATURE * BigInt(tx.message.header.numRequiredSignatures),
        tx,
        preBalances,
        postBalances,
      };
      landedBySig.set(signature, landed);
      landedList.push(landed);
      out.landed.push(signature);
    }
    return out;
  }

  type Params = unknown[];
  const context = () => ({ slot: Number(tip().slot) });
  const configOf = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const commitmentIn = (v: unknown): Commitment => (configOf(v).commitment as Commitment | undefined) ?? "finalized";

  class RpcFailure extends Error {
    constructor(
      readonly code: number,
      message: string,
    ) {
      super(message);
    }
  }

  const methods: Record<string, (params: Params) => unknown> = {
    getHealth: () => "ok",
    getVersion: () => ({ "solana-core": "2.2.0", "feature-set": 0 }),
    getGenesisHash: () => blocks[0]!.blockhash,
    getSlot: ([config]) => Number(at(commitmentIn(config)).slot),
    getBlockHeight: ([config]) => Number(at(commitmentIn(config)).height),
    getLatestBlockhash: ([config]) => {
      const b = at(commitmentIn(config));
      return { context: context(), value: { blockhash: b.blockhash, lastValidBlockHeight: Number(b.height + MAX_PROCESSING_AGE) } };
    },
    isBlockhashValid: ([hash]) => {
      const b = byHash.get(String(hash));
      return { context: context(), value: !!b && b.height + MAX_PROCESSING_AGE >= tip().height + 1n };
    },
    getBalance: ([address]) => ({ context: context(), value: Number(balanceOf(key(String(address)))) }),
    getMinimumBalanceForRentExemption: ([size]) => Number(svm.minimumBalanceForRentExemption(BigInt(Number(size ?? 0)))),
    getFeeForMessage: ([message]) => {
      const bytes = base64.decode(String(message));
      // The header's first byte is numRequiredSignatures (after a version prefix for v0 messages).
      const signatures = bytes[0]! & 0x80 ? bytes[1]! : bytes[0]!;
      return { context: context(), value: Number(LAMPORTS_PER_SIGNATURE * BigInt(signatures)) };
    },
    getAccountInfo: ([address]) => {
      const account = svm.getAccount(key(String(address)));
      if (!account) return { context: context(), value: null };
      return {
        context: context(),
        value: {
          data: [base64.encode(account.data), "base64"],
          executable: account.executable,
          lamports: Number(account.lamports),
          owner: account.owner.toBase58(),
          rentEpoch: Number(account.rentEpoch ?? 0),
          space: account.data.length,
        },
      };
    },
    requestAirdrop: ([address, lamports]) => {
      const result = svm.airdrop(key(String(address)), BigInt(Number(lamports)));
      if (!result || result instanceof FailedTransactionMetadata) throw new RpcFailure(-32603, "airdrop failed");
      return base58.encode(result.signature());
    },
    sendTransaction: ([wire, config]) => {
      const c = configOf(config);
      if (c.encoding !== "base64") throw new RpcFailure(-32602, "only base64 transactions are accepted here");
      let tx: VersionedTransaction;
      try {
        tx = VersionedTransaction.deserialize(base64.decode(String(wire)));
      } catch {
        throw new RpcFailure(-32602, "invalid transaction: failed to deserialize");
      }
      const signature = base58.encode(tx.signatures[0]!);
      sendCounts.set(signature, (sendCounts.get(signature) ?? 0) + 1);
      if (!c.skipPreflight) {
        const made = byHash.get(tx.message.recentBlockhash);
        if (!made || made.height + MAX_PROCESSING_AGE < tip().height + 1n) throw new RpcFailure(-32002, "Transaction simulation failed: Blockhash not found");
        if (landedBySig.has(signature)) throw new RpcFailure(-32002, "Transaction simulation failed: This transaction has already been processed");
        const simulated = svm.simulateTransaction(tx);
        if (simulated instanceof FailedTransactionMetadata) throw new RpcFailure(-32002, `Transaction simulation failed: ${String(simulated.err())}`);
      }
      if (!landedBySig.has(signature) && !pending.some((p) => p.signature === signature)) pending.push({ signature, tx });
      return signature;
    },
    getSignatureStatuses: ([signatures]) => ({
      context: context(),
      value: (signatures as string[]).map((s) => {
        const l = landedBySig.get(s);
        if (!l) return null;
        const status = commitmentOf(l);
        return { slot: Number(l.slot), confirmations: status === "finalized" ? null : Number(tip().height - l.height), err: l.err, confirmationStatus: status };
      }),
    }),
    getTransaction: ([signature, config]) => {
      const l = landedBySig.get(String(signature));
      if (!l || !meets(l, commitmentIn(config))) return null;
      const m = l.tx.message;
      return {
        slot: Number(l.slot),
        blockTime: null,
        version: l.tx.version,
        transaction: {
          signatures: l.tx.signatures.map((s) => base58.encode(s)),
          message: {
            accountKeys: m.staticAccountKeys.map((k) => k.toBase58()),
            header: m.header,
            instructions: m.compiledInstructions.map((i) => ({ accounts: i.accountKeyIndexes, data: base58.encode(i.data), programIdIndex: i.programIdIndex })),
            recentBlockhash: m.recentBlockhash,
            ...(l.tx.version === 0 ? { addressTableLookups: [] } : {}),
          },
        },
        meta: {
          err: l.err,
          fee: Number(l.fee),
          innerInstructions: [],
          preBalances: l.preBalances.map(Number),
          postBalances: l.postBalances.map(Number),
          logMessages: [],
          preTokenBalances: [],
          postTokenBalances: [],
          loadedAddresses: { writable: [], readonly: [] },
        },
      };
    },
  };

  async function answer(request: { id?: unknown; method?: unknown; params?: unknown }): Promise<unknown> {
    const id = request.id ?? null;
    const method = String(request.method ?? "");
    const handler = methods[method];
    if (!handler) return { jsonrpc: "2.0", id, error: { code: -32601, message: `Method not found: ${method}` } };
    calls.set(method, (calls.get(method) ?? 0) + 1);
    try {
      return { jsonrpc: "2.0", id, result: handler(Array.isArray(request.params) ? request.params : []) };
    } catch (error) {
      const code = error instanceof RpcFailure ? error.code : -32603;
      return { jsonrpc: "2.0", id, error: { code, message: (error as Error).message } };
    }
  }

  let stopped = false;
  const chain: SolanaChain = {
    url: "",
    svm,
    height: (c = "processed") => at(c).height,
    slot: (c = "processed") => at(c).slot,
    airdrop(address, lamports) {
      const result = svm.airdrop(key(address), lamports);
      if (!result || result instanceof FailedTransactionMetadata) throw new Error("airdrop failed");
    },
    balance: (address) => balanceOf(key(address)),
    pending: () => pending.map((p) => p.signature),
    sends: (signature) => sendCounts.get(signature) ?? 0,
    landed: () => [...landedList],
    status: (signature) => landedBySig.get(signature),
    land,
    drop() {
      const lost = pending.map((p) => p.signature);
      pending = [];
      return lost;
    },
    advance(count = 1) {
      for (let i = 0; i < count; i++) makeBlock();
    },
    calls,
    unresponsive: false,
    async stop() {
      stopped = true;
      await server.stop(true);
    },
  };

  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      // Held, unanswered, while the test says so (looked at again every 25 ms; not a test's sleep).
      while (chain.unresponsive && !stopped) await Bun.sleep(25);
      if (stopped) return new Response("stopped", { status: 503 });
      if (req.method !== "POST") return new Response("solana json-rpc: POST only", { status: 405 });
      let body: unknown;
      try {
        body = await req.json();
      } catch {
        return Response.json({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
      }
      if (Array.isArray(body)) return Response.json(await Promise.all(body.map((r) => answer(r as never))));
      return Response.json(await answer(body as never));
    },
  });
  chain.url = `http://127.0.0.1:${server.port}`;
  return chain;
}

/** A LiteSVM transaction error as the RPC shows one: a name, or `{Name: detail}`. */
function errorJson(err: unknown): unknown {
  if (typeof err === "number") return TRANSACTION_ERRORS[err] ?? `TransactionError${err}`;
  const text = String(err);
  const name = text.match(/^([A-Za-z]+)/)?.[1]?.replace(/^TransactionError/, "") ?? "TransactionError";
  return { [name]: text };
}

/** LiteSVM's TransactionErrorFieldless, by value. */
const TRANSACTION_ERRORS = [
  "AccountInUse",
  "AccountLoadedTwice",
  "AccountNotFound",
  "ProgramAccountNotFound",
  "InsufficientFundsForFee",
  "InvalidAccountForFee",
  "AlreadyProcessed",
  "BlockhashNotFound",
  "CallChainTooDeep",
  "MissingSignatureForFee",
  "InvalidAccountIndex",
  "SignatureFailure",
  "InvalidProgramForExecution",
  "SanitizeFailure",
  "ClusterMaintenance",
];

/** A URL where nothing listens (a port just freed). */
export async function deadUrl(): Promise<string> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const url = `http://127.0.0.1:${s.port}`;
  await s.stop(true);
  return url;
}
