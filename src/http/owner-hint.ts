import type { Context } from "hono";
import { OwnerHints, ownerHints } from "../../actors/router";

/** The answer's header naming the node that owns the wallet or chama of the path (README "Several nodes"). */
export const OWNER_HEADER = "coffer-owner";

/**
 * Runs a request so the router can note which node its actor lives on, and when the command had to
 * be forwarded to another node that announced a public URL, names that node in a `Coffer-Owner`
 * header: a client that trusts it may send that wallet's (or chama's) next requests straight there.
 * Only the actor of the path counts (`walletId`, `chamaId`): that is what the client keys it by.
 */
export async function withOwnerHint(c: Context, clustered: boolean, answer: () => Promise<Response>): Promise<Response> {
  // Reads never reach an actor; a change whose path names no wallet or chama has nothing to hint.
  const id = clustered && c.req.method === "POST" ? (c.req.param("walletId") ?? c.req.param("chamaId")) : undefined;
  if (id === undefined) return answer();
  const hints = new OwnerHints();
  const res = await ownerHints.run(hints, answer);
  const url = hints.of(id);
  if (url) res.headers.set(OWNER_HEADER, url);
  return res;
}
