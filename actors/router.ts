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
