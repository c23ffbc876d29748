import { ADMIN, tokenFor, type As } from "../support/auth";

export interface GqlAnswer {
  status: number;
  body: any;
  ms: number;
}

/** One GraphQL request over real HTTP: a query (and variables), as `as` (an admin by default). */
export async function gql(
  baseUrl: string,
  query: string,
  variables?: Record<string, unknown>,
  opts: { as?: As; key?: string; method?: "GET" | "POST"; raw?: string } = {},
): Promise<GqlAnswer> {
  const headers: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${await tokenFor(opts.as ?? ADMIN)}` };
  if (opts.key) headers["idempotency-key"] = opts.key;
  const started = performance.now();
  let res: Response;
  if (opts.method === "GET") {
    const url = new URL(`${baseUrl}/graphql`);
    url.searchParams.set("query", query);
    if (variables) url.searchParams.set("variables", JSON.stringify(variables));
    res = await fetch(url, { headers });
  } else {
    res = await fetch(`${baseUrl}/graphql`, { method: "POST", headers, body: opts.raw ?? JSON.stringify({ query, variables }) });
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // left as text
  }
  return { status: res.status, body, ms: performance.now() - started };
}

/** The codes of an answer's errors. */
export const codes = (a: GqlAnswer): string[] => (a.body?.errors ?? []).map((e: any) => e.extensions?.code);
