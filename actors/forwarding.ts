import { BUS_PAYLOAD_MAX_BYTES } from "./bus/wire";
import { decode, encode } from "./codec";
import type { ActorKindName, Reply } from "./envelope";

/**
 * Commands forwarded many to one NATS message (actors/nats-router.ts sends them, actors/cluster.ts
 * serves them).
 *
 * A batch goes to the node the sender believes owns the commands' shards, on
 * `<prefix>.node.<nodeId>.commands`. The message is signed like any node message (actors/bus/wire.ts:
 * subject, time, nonce, body), and its body carries each command exactly as it would travel alone:
 * its own subject (`<prefix>.<kind>.<shard>.<id>`) and its own signed payload (own nonce, own time,
 * own HMAC over its own subject). The receiver checks the batch's signature, then every command on
 * its own through the bus guard as if it had arrived alone: one forged or replayed command is
 * dropped by itself and the others run.
 *
 *   request body: {"v":1,"c":[[<subject>,<signed command payload>],…]}
 *   reply body:   {"v":1,"n":<nodeId>,"u":<public URL or absent>,"r":[<encoded Reply> | 0 | 1 | 2,…]}
 *
 * The reply (signed, bound to the batch's nonce) has one entry per command, in order: the outcome,
 * or 0 = not mine (this node does not hold the shard: the sender asks the shard's subject instead,
 * once), 1 = dropped by the guard, 2 = not answered here (the reply would be too large). A command
 * with no outcome is sent again on its own, exactly as a single command after no answer: with its
 * idempotency key, so at most one effect.
 */
export const BATCH_VERSION = 1;
export const NOT_MINE = 0;
export const DROPPED = 1;
export const UNANSWERED = 2;
export type ItemAnswer = Reply | typeof NOT_MINE | typeof DROPPED | typeof UNANSWERED;

/** Room kept for the signed header line and the batch's own JSON around its commands. */
const ENVELOPE_ROOM_BYTES = 1_024;
/** The most a batch's body may hold so the signed message stays within what the bus takes. */
export const BATCH_BODY_MAX_BYTES = BUS_PAYLOAD_MAX_BYTES - ENVELOPE_ROOM_BYTES;
/** Commands in one batch at most (the receiver refuses a longer one whole). */
export const BATCH_COMMANDS_LIMIT = 1_024;

export function batchSubject(prefix: string, nodeId: string): string {
  return `${prefix}.node.${nodeId}.commands`;
}

/** What a command costs in a batch's body: its subject and payload as JSON strings, and the brackets. */
export function itemBytes(subject: string, payload: string): number {
  return Buffer.byteLength(JSON.stringify(subject)) + Buffer.byteLength(JSON.stringify(payload)) + 4;
}

export function encodeBatch(items: readonly (readonly [subject: string, payload: string])[]): string {
  return JSON.stringify({ v: BATCH_VERSION, c: items });
}

/** The commands of a batch body, or undefined when it is not one (never throws). */
export function decodeBatch(body: string): [subject: string, payload: string][] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || (value as { v?: unknown }).v !== BATCH_VERSION) return undefined;
  const items = (value as { c?: unknown }).c;
  if (!Array.isArray(items) || items.length === 0 || items.length > BATCH_COMMANDS_LIMIT) return undefined;
  for (const item of items) {
    if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== "string" || typeof item[1] !== "string") return undefined;
  }
  return items as [string, string][];
}

/**
 * The reply to a batch: each outcome as its own JSON inside the reply (not a string in a string:
 * read once, not twice); once the body would pass what the bus takes, the rest are marked
 * UNANSWERED (their senders ask again on their own; the actors' idempotency answers them with the
 * outcome already committed).
 */
export function encodeBatchReply(nodeId: string, publicUrl: string | undefined, answers: readonly ItemAnswer[]): string {
  const head = `{"v":${BATCH_VERSION},"n":${JSON.stringify(nodeId)}${publicUrl ? `,"u":${JSON.stringify(publicUrl)}` : ""},"r":[`;
  let room = BATCH_BODY_MAX_BYTES - Buffer.byteLength(head) - 2;
  const parts: string[] = [];
  for (const answer of answers) {
    const text = typeof answer === "number" ? String(answer) : encode(answer);
    const cost = Buffer.byteLength(text) + 1;
    if (typeof answer !== "number" && cost > room - 2 * (answers.length - parts.length)) {
      parts.push(String(UNANSWERED));
      room -= 2;
      continue;
    }
    parts.push(text);
    room -= cost;
  }
  return `${head}${parts.join(",")}]}`;
}

export interface BatchReply {
  nodeId: string;
  publicUrl: string | undefined;
  answers: ItemAnswer[];
}

/** A batch reply with exactly `count` answers, or undefined (never throws). */
export function decodeBatchReply(body: string, count: number): BatchReply | undefined {
  try {
    // The codec's reviver (bigints) only where a bigint is written: most outcomes carry none.
    const value = (body.includes('"$bigint"') ? decode(body) : JSON.parse(body)) as { v?: unknown; n?: unknown; u?: unknown; r?: unknown };
    if (value.v !== BATCH_VERSION || typeof value.n !== "string" || !Array.isArray(value.r) || value.r.length !== count) return undefined;
    const answers = value.r.map((a: unknown): ItemAnswer => (isReply(a) ? a : a === NOT_MINE ? NOT_MINE : a === DROPPED ? DROPPED : UNANSWERED));
    return { nodeId: value.n, publicUrl: publicOrigin(value.u), answers };
  } catch {
    return undefined;
  }
}

function isReply(value: unknown): value is Reply {
  return typeof value === "object" && value !== null && typeof (value as { status?: unknown }).status === "number";
}

/**
 * A node's public base URL as an origin (`https://node-a.example.com:3000`), or undefined when it
 * is not a plain http(s) origin (no credentials, path, query or fragment).
 */
export function publicOrigin(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length > 512) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.username || url.password || (url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) return undefined;
  return url.origin;
}

/** `<prefix>.<kind>.<shard>.<id>` taken apart, or undefined when it is no command subject under `prefix`. */
export function commandSubject(prefix: string, subject: string, kinds: readonly ActorKindName[]): { kind: ActorKindName; shard: number } | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const parts = subject.slice(prefix.length + 1).split(".");
  if (parts.length !== 3) return undefined;
  const kind = parts[0] as ActorKindName;
  if (!kinds.includes(kind) || !/^[0-9]{1,5}$/.test(parts[1]!)) return undefined;
  return { kind, shard: Number(parts[1]) };
}
