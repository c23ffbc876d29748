import { Connection } from "@solana/web3.js";

/**
 * The network's RPC URLs behind `@solana/web3.js`'s `Connection`, tried in order: a URL whose node
 * does not answer (refused, timed out, a 5xx or 429) hands the call to the next one; a node that
 * answers (even with an error) is the answer. When none answers the call throws
 * `SolanaRpcUnreachable` and the caller tries again later; nothing is decided on silence.
 *
 * Each call gets its own `Connection` (cheap: no socket is opened until it fetches) so that whether
 * its node answered is known for that call alone, whatever else runs at the same time.
 */
export class SolanaRpcUnreachable extends Error {}

export class SolanaRpc {
  constructor(
    private readonly urls: string[],
    private readonly timeoutMs = 5_000,
  ) {}

  async call<T>(what: string, fn: (connection: Connection) => Promise<T>): Promise<T> {
    for (const url of this.urls) {
      const transport = { failed: false };
      const connection = new Connection(url, { commitment: "confirmed", disableRetryOnRateLimit: true, httpAgent: false, fetch: this.fetchFor(transport) });
      try {
        return await fn(connection);
      } catch (error) {
        if (!transport.failed) throw error;
      }
    }
    throw new SolanaRpcUnreachable(`solana rpc ${what}: no node answered`);
  }

  private fetchFor(transport: { failed: boolean }): typeof fetch {
    const timeoutMs = this.timeoutMs;
    const bounded = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const timeout = AbortSignal.timeout(timeoutMs);
      try {
        const res = await fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout });
        if (res.status >= 500 || res.status === 429) transport.failed = true;
        return res;
      } catch (error) {
        transport.failed = true;
        throw error;
      }
    };
    return bounded as typeof fetch;
  }
}
