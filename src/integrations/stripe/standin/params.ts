import { invalidRequest, missingParam, unknownParam } from "./errors";
import type { FormObject, FormValue } from "./form";

/**
 * Each endpoint declares the parameters it accepts; anything else is refused with Stripe's
 * `parameter_unknown`, so a misspelt parameter fails here as it would against the real API.
 * Values arrive as strings and are checked and converted the way Stripe does
 * (`parameter_invalid_integer`, `parameter_missing`, …).
 */
export type Field =
  | { readonly t: "int"; readonly required?: boolean; readonly min?: number; readonly max?: number }
  | { readonly t: "string"; readonly required?: boolean; readonly maxLength?: number }
  | { readonly t: "bool"; readonly required?: boolean }
  | { readonly t: "enum"; readonly required?: boolean; readonly values: readonly string[] }
  | { readonly t: "currency"; readonly required?: boolean }
  | { readonly t: "metadata"; readonly required?: boolean }
  | { readonly t: "strings"; readonly required?: boolean }
  | { readonly t: "range"; readonly required?: boolean }
  | { readonly t: "object"; readonly required?: boolean; readonly fields: Spec }
  /** Accepted as sent and not interpreted (nested option blocks the stand-in has no use for). */
  | { readonly t: "opaque"; readonly required?: boolean };

export type Spec = { readonly [name: string]: Field };

export interface Range {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
}

type FieldValue<F> = F extends { t: "int" }
  ? number
  : F extends { t: "bool" }
    ? boolean
    : F extends { t: "metadata" }
      ? Record<string, string> | ""
      : F extends { t: "strings" }
        ? string[]
        : F extends { t: "range" }
          ? Range
          : F extends { t: "object"; fields: infer S extends Spec }
            ? Parsed<S>
            : F extends { t: "opaque" }
              ? FormValue
              : string;

type RequiredKeys<S extends Spec> = { [K in keyof S]: S[K] extends { required: true } ? K : never }[keyof S];

export type Parsed<S extends Spec> = { -readonly [K in RequiredKeys<S>]: FieldValue<S[K]> } & {
  -readonly [K in Exclude<keyof S, RequiredKeys<S>>]?: FieldValue<S[K]>;
} & { expand?: string[] };

export const CURRENCIES = new Set(
  (
    "usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd " +
    "cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd " +
    "hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad " +
    "mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln " +
    "pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs " +
    "uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw"
  ).split(" "),
);

export const ZERO_DECIMAL = new Set("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split(" "));

function readInt(name: string, v: FormValue, f: { min?: number; max?: number }): number {
  if (typeof v !== "string" || !/^-?\d{1,16}$/.test(v)) {
    throw invalidRequest(`Invalid integer: ${typeof v === "string" ? v : "(an object)"}`, {
      code: "parameter_invalid_integer",
      param: name,
    });
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw invalidRequest(`Invalid integer: ${v}`, { code: "parameter_invalid_integer", param: name });
  if (f.min !== undefined && n < f.min) {
    throw invalidRequest(`This value must be greater than or equal to ${f.min}.`, { code: "parameter_invalid_integer", param: name });
  }
  if (f.max !== undefined && n > f.max) {
    throw invalidRequest(`This value must be less than or equal to ${f.max}.`, { code: "parameter_invalid_integer", param: name });
  }
  return n;
}

function readString(name: string, v: FormValue, maxLength = 5_000): string {
  if (typeof v !== "string") throw invalidRequest(`Invalid string: ${name} must be a string, not an object.`, { param: name });
  if (v.length > maxLength) throw invalidRequest(`Invalid string: ${name} is longer than ${maxLength} characters.`, { param: name });
  return v;
}

function readMetadata(name: string, v: FormValue): Record<string, string> | "" {
  if (v === "") return "";
  if (typeof v !== "object" || Array.isArray(v)) throw invalidRequest("Invalid metadata: metadata must be an object.", { param: name });
  const keys = Object.keys(v);
  if (keys.length > 50) throw invalidRequest("Invalid metadata: metadata can have up to 50 keys.", { param: name });
  const out: Record<string, string> = {};
  for (const k of keys) {
    const value = v[k];
    if (typeof value !== "string") throw invalidRequest(`Invalid metadata: the value of ${k} must be a string.`, { param: `${name}[${k}]` });
    if (k.length > 40) {
      throw invalidRequest(`Metadata keys can have up to 40 characters, but you passed in a key that is ${k.length} characters.`, { param: name });
    }
    if (value.length > 500) {
      throw invalidRequest(`Metadata values can have up to 500 characters, but you passed in a value that is ${value.length} characters.`, {
        param: `${name}[${k}]`,
      });
    }
    out[k] = value;
  }
  return out;
}

function readRange(name: string, v: FormValue): Range {
  if (typeof v === "string") {
    const n = readInt(name, v, {});
    return { gte: n, lte: n };
  }
  if (Array.isArray(v)) throw invalidRequest(`Invalid ${name}: expected an integer or a hash of gt/gte/lt/lte.`, { param: name });
  const out: Range = {};
  for (const [k, value] of Object.entries(v)) {
    if (k !== "gt" && k !== "gte" && k !== "lt" && k !== "lte") throw unknownParam(`${name}[${k}]`);
    out[k] = readInt(`${name}[${k}]`, value, {});
  }
  return out;
}

function readStrings(name: string, v: FormValue): string[] {
  if (typeof v === "string") return v === "" ? [] : [v];
  const list = Array.isArray(v) ? v : Object.values(v);
  return list.map((item, i) => readString(`${name}[${i}]`, item));
}

function readField(name: string, f: Field, v: FormValue): unknown {
  switch (f.t) {
    case "int":
      return readInt(name, v, f);
    case "string":
      return readString(name, v, f.maxLength);
    case "bool":
      if (v === "true") return true;
      if (v === "false") return false;
      throw invalidRequest(`Invalid boolean: ${typeof v === "string" ? v : "(an object)"}`, { param: name });
    case "enum": {
      const s = readString(name, v);
      if (!f.values.includes(s)) throw invalidRequest(`Invalid ${name}: must be one of ${f.values.join(", ")}`, { param: name });
      return s;
    }
    case "currency": {
      const s = readString(name, v).toLowerCase();
      if (!CURRENCIES.has(s)) {
        throw invalidRequest(`Invalid currency: ${s}. Stripe currently supports these currencies: ${[...CURRENCIES].join(", ")}`, {
          param: name,
        });
      }
      return s;
    }
    case "metadata":
      return readMetadata(name, v);
    case "strings":
      return readStrings(name, v);
    case "range":
      return readRange(name, v);
    case "object":
      if (v === "") return {};
      if (typeof v !== "object" || Array.isArray(v)) throw invalidRequest(`Invalid ${name}: expected an object.`, { param: name });
      return readSpec(f.fields, v, name);
    case "opaque":
      return v;
  }
}

function readSpec(spec: Spec, raw: FormObject, prefix: string | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const name = prefix === null ? key : `${prefix}[${key}]`;
    if (prefix === null && key === "expand") {
      out.expand = readStrings("expand", value);
      continue;
    }
    const field = spec[key];
    if (!field) throw unknownParam(name);
    out[key] = readField(name, field, value);
  }
  for (const [key, field] of Object.entries(spec)) {
    if (field.required && out[key] === undefined) throw missingParam(prefix === null ? key : `${prefix}[${key}]`);
  }
  return out;
}

/** Check `raw` against `spec` and convert it, or throw Stripe's error for the first bad parameter. */
export function readParams<S extends Spec>(spec: S, raw: FormObject): Parsed<S> {
  return readSpec(spec, raw, null) as Parsed<S>;
}

/** Pagination and `created` filters shared by every list endpoint. */
export const LIST_SPEC = {
  limit: { t: "int", min: 1, max: 100 },
  starting_after: { t: "string" },
  ending_before: { t: "string" },
  created: { t: "range" },
} as const satisfies Spec;
