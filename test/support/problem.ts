import { expect } from "bun:test";
import type { ApiResponse } from "./node";

/** An RFC 9457 problem+json answer with this status and stable code (and a human `detail`). */
export function expectProblem(res: ApiResponse, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(res.headers.get("content-type") ?? "").toStartWith("application/problem+json");
  expect(res.body.status).toBe(status);
  expect(res.body.detail).toBeString();
}
