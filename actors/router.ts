import { AsyncLocalStorage } from "node:async_hooks";
import type { ActorKindName, Envelope, Reply } from "./envelope";
import type { ActorHost } from "./host";

/** The actor a command is for: which machine it runs and its id. */
export interface Aggregate {
  kind: ActorKindName;
  id: string;
}

/**
 * Where a command goes. In one process it goes straight to the local host; with NATS it travels on
 * `<prefix>.<kind>.<shard>.<id>` (`<prefix>.wallet.…` or `<prefix>.chama.…`) to whichever node
 * owns the shard (nats-router.ts).
 */
export interface Router {
  send(to: Aggregate, envelope: Envelope): Promise<Reply>;
}

export class InProcessRouter implements Router {
  constructor(private readonly host: ActorHost) {}

  send(to: Aggregate, envelope: Envelope): Promise<Reply> {
    assertSameKind(to, envelope);
    return this.host.dispatch(to.id, envelope);
  }
}

/** A command addressed to one kind of actor but built for the other is a programmer error. */
export function assertSameKind(to: Aggregate, envelope: Envelope): void {
  const kind = envelope.kind ?? "wallet";
  if (kind !== to.kind) throw new Error(`a ${kind} command sent to a ${to.kind} (${to.id})`);
}

/**
 * The owners a request's commands were forwarded to, for the answer's `Coffer-Owner` hint
 * (src/http/owner-hint.ts): the edge runs the request inside `ownerHints.run(new OwnerHints(), …)`,
 * and the NATS router records, for each actor it reached on another node, that node's public URL.
 */
export class OwnerHints {
  private readonly byId = new Map<string, string>();

  /** At most a few per request (a request touches one or two actors): the rest are not kept. */
  record(id: string, publicUrl: string): void {
    if (this.byId.size < OWNER_HINTS_PER_REQUEST_MAX) this.byId.set(id, publicUrl);
  }

  of(id: string | undefined): string | undefined {
    return id === undefined ? undefined : this.byId.get(id);
  }
}

const OWNER_HINTS_PER_REQUEST_MAX = 8;

export const ownerHints = new AsyncLocalStorage<OwnerHints>();
