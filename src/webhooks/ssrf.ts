import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

/**
 * Server-side request forgery: an app's endpoint URL is a place Coffer's nodes will POST to, so it
 * must never be one inside Coffer's own network. A URL is taken only over https, without
 * credentials in it, to a host none of whose addresses is loopback, private, link-local (the cloud
 * metadata address 169.254.169.254 among them), shared (CGNAT), multicast, unspecified, reserved
 * or documentation space. It is checked when the endpoint is registered and its host is resolved
 * again before every delivery (the delivery then connects to the address that was checked, so a
 * name that changes its answer between the check and the connection gains nothing: DNS
 * rebinding). Redirects are never followed.
 *
 * An operator may allow named hosts (`WEBHOOK_ALLOW_HOSTS`: an exact host name or IP literal of
 * the URL, never "whatever resolves to it") and plain http (`WEBHOOK_ALLOW_HTTP`), for receivers
 * inside their own network; the test suites do, for their local receiver.
 */
export interface UrlPolicy {
  /** Hosts (lower case, IPv6 without brackets) exempt from the address check. */
  allowHosts: ReadonlySet<string>;
  allowHttp: boolean;
}

export const URL_MAX = 2_048;
const DNS_TIMEOUT_MS = 5_000;

export type Resolver = (host: string) => Promise<string[]>;

/** The system resolver, every address, within DNS_TIMEOUT_MS (a name that does not answer is a name that does not resolve). */
export const systemResolver: Resolver = async (host) => {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("DNS lookup timed out"), { code: "ETIMEOUT" })), DNS_TIMEOUT_MS);
  });
  try {
    const found = await Promise.race([lookup(host, { all: true, verbatim: true }), timeout]);
    return found.map((a) => a.address);
  } finally {
    clearTimeout(timer);
  }
};

export function urlPolicyOf(config: { WEBHOOK_ALLOW_HOSTS: string; WEBHOOK_ALLOW_HTTP: boolean }): UrlPolicy {
  const hosts = config.WEBHOOK_ALLOW_HOSTS.split(",")
    .map((h) => bare(h.trim().toLowerCase()))
    .filter(Boolean);
  return { allowHosts: new Set(hosts), allowHttp: config.WEBHOOK_ALLOW_HTTP };
}

/** Why a URL or an address is refused: a sentence of ours, never the URL itself (it may carry a token). */
export class UrlRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** `[::1]` → `::1`: URL hostnames keep IPv6 literals in brackets. */
function bare(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * The URL's form, before any name is looked up: absolute, https (or http where allowed), no user or
 * password, no fragment, a host. Returns the parsed URL and its host (bare, lower case).
 */
export function checkUrlForm(text: string, policy: UrlPolicy): { url: URL; host: string } {
  if (text.length > URL_MAX) throw new UrlRefused(`a URL of at most ${URL_MAX} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UrlRefused("not an absolute URL");
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && policy.allowHttp)) throw new UrlRefused("the URL must use https");
  if (url.username || url.password) throw new UrlRefused("the URL may not carry a user name or password");
  if (url.hash) throw new UrlRefused("the URL may not have a fragment");
  const host = bare(url.hostname.toLowerCase());
  if (!host) throw new UrlRefused("the URL has no host");
  return { url, host };
}

/**
 * Where a delivery (or a registration's check) may connect: the URL's host if it is an allowed
 * one (`pinned` undefined: connect by name), else the addresses it resolves to, every one of which
 * must be public (a name with one private answer among public ones is refused: it could be served
 * either way). `unresolved` when the name has no address right now: registration accepts it (the
 * delivery checks again), a delivery fails and is retried.
 */
export type Target = { kind: "allowed" } | { kind: "public"; addresses: string[] } | { kind: "unresolved" };

export async function resolveTarget(host: string, policy: UrlPolicy, resolve: Resolver = systemResolver): Promise<Target> {
  if (policy.allowHosts.has(host)) return { kind: "allowed" };
  if (isIP(host)) {
    const refused = forbiddenAddress(host);
    if (refused) throw new UrlRefused(`the host is ${refused} address`);
    return { kind: "public", addresses: [host] };
  }
  // RFC 6761: names under .invalid never resolve; answer at once without asking DNS.
  if (host === "invalid" || host.endsWith(".invalid")) return { kind: "unresolved" };
  let addresses: string[] = [];
  try {
    addresses = await resolve(host);
  } catch {
    // no address right now (decided below)
  }
  for (const address of addresses) {
    const refused = forbiddenAddress(address);
    if (refused) throw new UrlRefused(`the host resolves to ${refused} address`);
  }
  // Whatever they resolve to today, these names mean "this machine" or "this network".
  if (isSpecialName(host)) throw new UrlRefused("the host is a local name");
  if (!addresses.length) return { kind: "unresolved" };
  return { kind: "public", addresses };
}

/** Names that mean "this machine" or "this network" whatever DNS says (RFC 6761 `localhost`, mDNS `.local`, single-label names). */
function isSpecialName(host: string): boolean {
  return host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal") || !host.includes(".");
}

// ---------------------------------------------------------------------------------------------
// Addresses

/** [network, prefix length, what it is] */
type Block = [bigint, number, string];

const V4: Block[] = [
  [v4("0.0.0.0"), 8, "an unspecified (this-network)"],
  [v4("10.0.0.0"), 8, "a private"],
  [v4("100.64.0.0"), 10, "a shared (CGNAT)"],
  [v4("127.0.0.0"), 8, "a loopback"],
  [v4("169.254.0.0"), 16, "a link-local (metadata)"],
  [v4("172.16.0.0"), 12, "a private"],
  [v4("192.0.0.0"), 24, "a reserved"],
  [v4("192.0.2.0"), 24, "a documentation"],
  [v4("192.88.99.0"), 24, "a reserved"],
  [v4("192.168.0.0"), 16, "a private"],
  [v4("198.18.0.0"), 15, "a reserved"],
  [v4("198.51.100.0"), 24, "a documentation"],
  [v4("203.0.113.0"), 24, "a documentation"],
  [v4("224.0.0.0"), 4, "a multicast"],
  [v4("240.0.0.0"), 4, "a reserved"],
];

const V6: Block[] = [
  [v6("::"), 128, "an unspecified"],
  [v6("::1"), 128, "a loopback"],
  [v6("100::"), 64, "a discard"],
  [v6("2001:db8::"), 32, "a documentation"],
  [v6("fc00::"), 7, "a private (unique local)"],
  [v6("fe80::"), 10, "a link-local"],
  [v6("fec0::"), 10, "a site-local"],
  [v6("ff00::"), 8, "a multicast"],
];

/** IPv6 ranges that carry an IPv4 address in their last 32 bits, which is then what decides. */
const EMBEDS_V4: [bigint, number][] = [
  [v6("::ffff:0:0"), 96], // IPv4-mapped
  [v6("::"), 96], // IPv4-compatible (deprecated)
  [v6("64:ff9b::"), 96], // NAT64
  [v6("64:ff9b:1::"), 48], // local-use NAT64
];

/** What kind of forbidden address this is ("a loopback"), or undefined for a public one. */
export function forbiddenAddress(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return inBlocks(v4(address), V4, 32);
  if (family !== 6) return "an unparseable";
  const value = v6(address);
  const own = inBlocks(value, V6, 128);
  if (own) return own;
  for (const [net, bits] of EMBEDS_V4) if (within(value, net, bits, 128)) return inBlocks(value & 0xffffffffn, V4, 32);
  // 6to4 (2002::/16) carries an IPv4 address in bits 16–48.
  if (within(value, v6("2002::"), 16, 128)) return inBlocks((value >> 80n) & 0xffffffffn, V4, 32);
  return undefined;
}

function inBlocks(value: bigint, blocks: Block[], width: number): string | undefined {
  for (const [net, bits, what] of blocks) if (within(value, net, bits, width)) return what;
  if (width === 32 && value === 0xffffffffn) return "a broadcast";
  return undefined;
}

function within(value: bigint, net: bigint, bits: number, width: number): boolean {
  const shift = BigInt(width - bits);
  return value >> shift === net >> shift;
}

function v4(address: string): bigint {
  return address.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function v6(address: string): bigint {
  let text = address.toLowerCase().split("%")[0]!;
  // A dotted IPv4 tail (::ffff:127.0.0.1) becomes two hex groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = v4(dotted[1]!);
    text = text.slice(0, -dotted[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? (text.split("::") as [string, string]) : [text, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || "0", 16)), 0n);
}
