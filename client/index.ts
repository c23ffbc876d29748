import { createCofferClient } from "./core";
import { httpTransport, type HttpTransportOptions } from "./http";
import type { ClientOptions, CofferClient } from "./types";

/**
 * The typed Coffer client for apps (see client/README.md):
 *
 *   const coffer = createClient({ baseUrl: "https://coffer.example.com", token: () => session.token() });
 *   const wallet = await coffer.wallets.payments.create({ walletId, amount: "2.50" });
 *
 * Its types come from the operation table (src/api/operations/) through `import type` only; at
 * run time it needs nothing but fetch and client/routes.ts.
 */
export function createClient(options: ClientOptions & HttpTransportOptions): CofferClient {
  return createCofferClient(httpTransport(options), options);
}

export { createCofferClient, DEFAULTS } from "./core";
export { CofferApiError, CofferNetworkError } from "./errors";
export { httpTransport, type HttpTransportOptions } from "./http";
export { ROUTES } from "./routes";
export type * from "./types";
