import { invalidRequest } from "./errors";

/**
 * Stripe's request encoding: `application/x-www-form-urlencoded` with bracket notation
 * (`metadata[deposit_id]=…`, `expand[0]=…` as the SDK sends it, `expand[]=…` as curl users write it).
 * Parsed into nested objects and arrays of strings; every leaf stays a string (the endpoint's
 * parameter spec decides what it means).
 */
export type FormValue = string | FormObject | FormValue[];
export interface FormObject {
  [key: string]: FormValue;
}

const MAX_PAIRS = 2_000;
const MAX_DEPTH = 6;
const MAX_KEY_CHARS = 500;
const PUSH = "\u0000push:";

function decode(part: string): string {
  try {
    return decodeURIComponent(part.replaceAll("+", " "));
  } catch {
    throw invalidRequest("Invalid request: the body or query string is not valid URL encoding.");
  }
}

function splitKey(key: string): string[] {
  const open = key.indexOf("[");
  if (open <= 0) return [key];
  const segments = [key.slice(0, open)];
  const rest = key.slice(open);
  const re = /\[([^\[\]]*)\]/g;
  let consumed = 0;
  for (const m of rest.matchAll(re)) {
    if (m.index !== consumed) break;
    segments.push(m[1]!);
    consumed += m[0].length;
  }
  if (consumed !== rest.length) throw invalidRequest(`Invalid parameter name: ${key}`, { param: key });
  return segments;
}

function toArrays(node: FormValue): FormValue {
  if (typeof node === "string" || Array.isArray(node)) return node;
  const keys = Object.keys(node);
  for (const k of keys) node[k] = toArrays(node[k]!);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k) || k.startsWith(PUSH))) {
    const indexed = keys.filter((k) => !k.startsWith(PUSH)).sort((a, b) => Number(a) - Number(b));
    const pushed = keys.filter((k) => k.startsWith(PUSH));
    return [...indexed, ...pushed].map((k) => node[k]!);
  }
  return node;
}

export function parseForm(text: string): FormObject {
  const root: FormObject = {};
  if (text.trim() === "") return root;
  const pairs = text.split("&");
  if (pairs.length > MAX_PAIRS) throw invalidRequest(`Too many parameters (at most ${MAX_PAIRS}).`);
  let pushCounter = 0;
  for (const pair of pairs) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const rawKey = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? "" : decode(pair.slice(eq + 1));
    if (rawKey.length === 0) continue;
    if (rawKey.length > MAX_KEY_CHARS) throw invalidRequest("Parameter name too long.");
    const segments = splitKey(rawKey);
    if (segments.length > MAX_DEPTH) throw invalidRequest(`Parameter nested too deeply: ${rawKey}`, { param: rawKey });
    let node: FormObject = root;
    for (let i = 0; i < segments.length; i++) {
      let seg = segments[i]!;
      if (seg === "") seg = `${PUSH}${pushCounter++}`;
      const last = i === segments.length - 1;
      if (last) {
        if (typeof node[seg] === "object") throw invalidRequest(`Invalid value for ${rawKey}: it is an object.`, { param: rawKey });
        node[seg] = value;
      } else {
        const next = node[seg];
        if (next === undefined) {
          const created: FormObject = {};
          node[seg] = created;
          node = created;
        } else if (typeof next === "string") {
          // `metadata=` (clear) followed by `metadata[k]=v`: the object wins, like Stripe's parser.
          if (next !== "") throw invalidRequest(`Invalid value for ${segments.slice(0, i + 1).join("")}: expected an object.`, { param: rawKey });
          const created: FormObject = {};
          node[seg] = created;
          node = created;
        } else {
          node = next as FormObject;
        }
      }
    }
  }
  for (const k of Object.keys(root)) root[k] = toArrays(root[k]!);
  return root;
}
