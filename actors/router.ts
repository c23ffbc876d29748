import type { Envelope, Outcome } from "./envelope";
import type { ActorHost } from "./host";

/**
 * Where a wallet command goes. In one process it goes straight to the local host; with NATS it
 * travels on `<prefix>.wallet.<shard>.<walletId>` to whichever node owns the shard (nats-router.ts).
 */
export interface Router {
  send(walletId: string, envelope: Envelope): Promise<Outcome>;
}

export class InProcessRouter implements Router {
  constructor(private readonly host: ActorHost) {}

  send(walletId: string, envelope: Envelope): Promise<Outcome> {
    return this.host.dispatch(walletId, envelope);
  }
}
