/** Small pure helpers the client and its generator share (no imports: the generator runs before routes.ts exists). */

/** `api-keys.create` → `apiKeys.create`: where an operation sits in the client's tree of methods. */
export function camelPath(name: string): string {
  return name
    .split(".")
    .map((part) => part.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase()))
    .join(".");
}

/** `/v1/wallets/:walletId/payments` → `["walletId"]`. */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
}
