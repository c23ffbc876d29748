import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { createCofferClient } from "./core";
import type { Answer, Attempt, ClientOptions, CofferClient, Transport } from "./types";

export interface NatsTransportOptions {
  /** The nodes' NATS_SUBJECT_PREFIX (default `coffer`): operations answer on `<prefix>.v1.<name>`. */
  prefix?: string;
}

/**
 * The same client over NATS request-reply: subject `<prefix>.v1.<operation name>`, the headers as
 * they are, the whole input as the JSON payload; the reply is `{ status, body }`. No reply within
 * the attempt's timeout (or no node listening) is no answer: retried with the same key, as a 503 is.
 */
export function createNatsClient(nc: NatsConnection, options: ClientOptions & NatsTransportOptions = {}): CofferClient {
  return createCofferClient(natsTransport(nc, options), options);
}

export function natsTransport(nc: NatsConnection, options: NatsTransportOptions = {}): Transport {
  const prefix = options.prefix ?? "coffer";
  return {
    async send(attempt: Attempt): Promise<Answer> {
      const h = natsHeaders();
      for (const [name, value] of Object.entries(attempt.headers)) h.set(name, value);
      const request = nc.request(`${prefix}.v1.${attempt.name}`, JSON.stringify(attempt.input), { timeout: attempt.timeoutMs, headers: h });
      const msg = await (attempt.signal ? untilAborted(request, attempt.signal) : request);
      const reply = JSON.parse(msg.string()) as { status: number; body: unknown };
      if (typeof reply?.status !== "number") throw new Error("a reply without a status");
      return { status: reply.status, body: reply.body };
    },
  };
}

/** NATS requests take no signal: stop waiting when the caller gives up (the reply, if any, is dropped). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const aborted = () => reject(signal.reason);
    if (signal.aborted) return aborted();
    signal.addEventListener("abort", aborted, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", aborted));
  });
}
