import { expect } from "bun:test";
import type { Api } from "./node";

/**
 * The verifier (GET /admin/verify) finds every balance equal to its postings and nothing amiss,
 * asked through each node given (nodes sharing a database must all agree).
 */
export async function verifyIsClean(...via: (Api | { api: Api })[]): Promise<void> {
  if (!via.length) throw new Error("verifyIsClean: no node to ask");
  for (const node of via) {
    const api = typeof node === "function" ? node : node.api;
    const verify = await api("GET", "/admin/verify");
    expect(verify.status).toBe(200);
    expect(verify.body).toEqual({ ok: true, mismatches: [] });
  }
}
