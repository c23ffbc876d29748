import { log } from "../../lib/log";
import { decode, encode } from "../codec";
import type { Envelope, Reply } from "../envelope";
import { shardOf } from "../shards";
import { parseEnvelope } from "./envelope-schema";
import type { BusKeys } from "./keys";
import { ReplayGuard } from "./replay";
import { openReply, openRequest, type Refusal, sealReply, sealRequest } from "./wire";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface BusGuardOptions {
  /** How far a message's time may be from this node's clock (both ways) and still be taken. */
  maxAgeMs: number;
  shardCount: number;
  /** Nonces remembered per generation at most (see ReplayGuard). */
  replayMax?: number;
  /** Security log lines per second at most; the rest are counted only. */
  logPerSecondMax?: number;
}

export type Drop = Refusal | "invalid" | "wrong_shard" | "no_reply_subject" | "bad_reply" | "failed";

/**
 * The node's side of the bus's trust boundary: signs what it sends to other nodes, and checks
 * everything that arrives before an actor sees it: signature, age, replay, shape (zod), that the
 * subject's kind (`wallet` or `chama`) is the envelope's, and that the id in the subject lies in the
 * shard the subject names and is the id the command acts on. What fails
 * is dropped, counted and logged as a security event (kind and reason only: never the payload).
 */
export class BusGuard {
  private readonly replay: ReplayGuard;
  private readonly counts = new Map<Drop, number>();
  private logWindowStartMs = 0;
  private loggedInWindow = 0;

  constructor(
    private readonly keys: BusKeys,
    private readonly options: BusGuardOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.replay = new ReplayGuard(options.maxAgeMs, options.replayMax ?? 1_000_000, now());
  }

  /** Messages dropped since start, by reason (for /admin/cluster and tests). */
  get dropped(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.counts);
  }

  seal(subject: string, body: string): { payload: string; nonce: string } {
    return sealRequest(this.keys, subject, body, this.now());
  }

  /** A signed message's body, or undefined (dropped and counted). */
  open(subject: string, data: Uint8Array): { body: string; nonce: string } | undefined {
    const opened = openRequest(this.keys, this.replay, subject, data, this.now(), this.options.maxAgeMs);
    if (!opened.ok) return this.drop(opened.refusal, subject);
    return opened;
  }

  sealCommand(subject: string, envelope: Envelope): { payload: string; nonce: string } {
    return this.seal(subject, encode({ ...envelope, kind: envelope.kind ?? "wallet" }));
  }

  /** A command that arrived on `<prefix>.<kind>.<shard>.<id>`, checked through and through; else undefined. */
  openCommand(subject: string, data: Uint8Array): { id: string; envelope: Envelope; nonce: string } | undefined {
    const opened = this.open(subject, data);
    if (!opened) return undefined;
    const parts = subject.split(".");
    const id = parts.at(-1)!;
    const shard = Number(parts.at(-2));
    const kind = parts.at(-3);
    if (!UUID.test(id)) return this.drop("wrong_shard", subject);
    let value: unknown;
    try {
      value = decode<unknown>(opened.body);
    } catch {
      return this.drop("invalid", subject);
    }
    const parsed = parseEnvelope(value);
    if (!parsed.ok) return this.drop("invalid", subject, parsed.problem);
    const { command } = parsed.envelope;
    // A chama command on a wallet subject (or the reverse) is addressed to the wrong actors.
    if (kind !== (parsed.envelope.kind ?? "wallet")) return this.drop("wrong_shard", subject);
    // The id the command acts on: a deposit's names its wallet too (deposit.open), so it is asked by kind.
    const names = kind === "deposit" ? ("depositId" in command ? command.depositId : id) : "walletId" in command ? command.walletId : "chamaId" in command ? command.chamaId : id;
    if (shardOf(id, this.options.shardCount) !== shard || names !== id) return this.drop("wrong_shard", subject);
    return { id, envelope: parsed.envelope, nonce: opened.nonce };
  }

  sealReply(requestNonce: string, body: string): string {
    return sealReply(this.keys, requestNonce, body);
  }

  sealOutcome(requestNonce: string, outcome: Reply): string {
    return sealReply(this.keys, requestNonce, encode(outcome));
  }

  /** The reply's body if a node signed it for this request; else undefined (counted). */
  openReply(requestNonce: string, data: Uint8Array, subject: string): string | undefined {
    const body = openReply(this.keys, requestNonce, data);
    return body === undefined ? this.drop("bad_reply", subject) : body;
  }

  /** Count and log (bounded) a message that was not taken. */
  drop(why: Drop, subject: string, detail?: string): undefined {
    this.counts.set(why, (this.counts.get(why) ?? 0) + 1);
    const nowMs = this.now();
    if (nowMs - this.logWindowStartMs >= 1_000) {
      this.logWindowStartMs = nowMs;
      this.loggedInWindow = 0;
    }
    if (this.loggedInWindow++ < (this.options.logPerSecondMax ?? 20)) {
      // The subject's kind only (its id is the target, not a secret, but a flood should not fill logs with ids).
      log("warn", "security: bus message dropped", { why, subject: subject.split(".").slice(0, 3).join("."), ...(detail ? { detail } : {}) });
    }
    return undefined;
  }
}
