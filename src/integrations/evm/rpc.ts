/**
 * A minimal JSON-RPC client over the network's `rpcUrls`, tried in order, each call bounded by a
 * timeout. A node's own error answer is an RpcError (its message is what the node said); a node
 * that does not answer at all is any other error (the caller tries again later).
 */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

export class RpcClient {
  constructor(
    private readonly urls: string[],
    private readonly timeoutMs = 5_000,
  ) {}

  async call<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    let last: unknown;
    for (const url of this.urls) {
      let body: { result?: T; error?: { message?: string; code?: number } };
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        if (!res.ok && res.status >= 500) throw new Error(`rpc ${method}: HTTP ${res.status}`);
        body = (await res.json()) as typeof body;
      } catch (error) {
        last = error;
        continue;
      }
      if (body.error) throw new RpcError(String(body.error.message ?? "rpc error"), body.error.code);
      return body.result as T;
    }
    throw last instanceof Error ? last : new Error(`rpc ${method}: no node answered`);
  }
}
