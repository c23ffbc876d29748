import { startNode, type Node } from "../../src/node";
import { loadConfig } from "../../src/config";
import { claimNode } from "./budget";
import { apiFor, testNodeEnv, type Api } from "./node";

/**
 * One side of a split brain made on purpose: a whole node serving HTTP on a database another node
 * also serves, with no NATS, so nothing routes an actor to one owner and only fencing protects it.
 */
export interface Side {
  name: string;
  node: Node;
  api: Api;
  stop(): Promise<void>;
}

/** `env` adds configuration (NATS_URL, NODE_ID… for a node that joins a cluster). */
export async function serveOn(name: string, url: string, env: Record<string, string> = {}): Promise<Side> {
  const release = claimNode(name);
  try {
    const node = await startNode(loadConfig({ ...(await testNodeEnv(env)), DATABASE_URL: url }), url);
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: node.http.fetch });
    return {
      name,
      node,
      api: apiFor(`http://127.0.0.1:${server.port}`),
      async stop() {
        await server.stop(true);
        await node.close();
        release();
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}
