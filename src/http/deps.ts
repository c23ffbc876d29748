import type { ActorHost } from "../../actors/host";
import type { Operations, Caller } from "../api/operations";
import type { Db } from "../db/client";
import type { Context } from "hono";

/** What route handlers need; built once in src/app.ts. */
export interface HttpDeps {
  db: Db;
  ops: Operations;
  host: ActorHost;
}

/** The caller behind a request. Until authentication lands, everyone shares one scope. */
export function callerOf(_c: Context): Caller {
  return { scope: "anonymous" };
}
