import { expect } from "bun:test";
import { DEFAULT_RULES, type MonitoringRules } from "../../src/monitoring/rules";
import { ADMIN, type As } from "../support/auth";
import type { TestNode } from "../support/node";

/**
 * Shared steps of the monitoring suites: rules with only what a test looks at switched on, money
 * moved over REST, and the worker run by hand until every committed event has been evaluated.
 */
export const BANK = { type: "bank", account: "DE89 3704 0044 0532 0130 00" } as const;
export const OTHER_BANK = { type: "bank", account: "GB82 WEST 1234 5698 7654 32" } as const;
export const THIRD_BANK = { type: "bank", account: "FR14 2004 1010 0505 0001 3M02 606" } as const;

type Patch = { [K in keyof MonitoringRules]?: Partial<MonitoringRules[K]> };

/** Every rule off except what `patch` turns on (each given rule is enabled, on top of its defaults). */
export function only(patch: Patch): MonitoringRules {
  const rules = structuredClone(DEFAULT_RULES) as MonitoringRules;
  for (const name of Object.keys(rules) as (keyof MonitoringRules)[]) rules[name].enabled = false;
  for (const [name, value] of Object.entries(patch) as [keyof MonitoringRules, object][]) Object.assign(rules[name], { enabled: true }, value);
  return rules;
}

export async function setRules(t: TestNode, rules: MonitoringRules): Promise<void> {
  // Whatever is still unevaluated is evaluated under the rules it arrived under.
  expect(await t.node.monitoring.settle()).toBe(true);
  const res = await t.api("POST", "/admin/monitoring/rules", { rules, note: "test" });
  expect({ status: res.status, body: res.body?.code }).toEqual({ status: 200, body: undefined });
}

export async function settle(t: TestNode): Promise<void> {
  expect(await t.node.monitoring.settle()).toBe(true);
}

export async function created(t: TestNode, method: string, path: string, body?: unknown, as: As = ADMIN, status = 201): Promise<any> {
  const res = await t.api(method, path, body, { as });
  if (res.status !== status) throw new Error(`${method} ${path}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A fresh wallet of `owner` with `amount` credited (by an admin). */
export async function wallet(t: TestNode, owner: string, amount = "100.00", asset = "USD"): Promise<string> {
  const id = (await created(t, "POST", "/v1/wallets", { ownerId: owner, asset })).id as string;
  if (amount !== "0") await created(t, "POST", `/v1/wallets/${id}/credits`, { amount });
  return id;
}

export const pay = (t: TestNode, walletId: string, amount: string) => created(t, "POST", `/v1/wallets/${walletId}/payments`, { amount });

/** Every alert about a subject (by its id), oldest first, straight from the API. */
export async function alertsAbout(t: TestNode, subjectId: string, rule?: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const res = await t.api("GET", `/admin/alerts?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    expect(res.status).toBe(200);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return items.filter((a) => a.subject.id === subjectId && (rule === undefined || a.rule === rule)).reverse();
}
