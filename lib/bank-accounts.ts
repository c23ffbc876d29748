/**
 * The bank account formats payouts accept, checked as far as a number can be checked without the
 * bank: an IBAN's country, length and mod-97 check digits (ISO 13616), a US routing number's ABA
 * checksum, the shape of a Kenyan account, a payment provider's token. Pure functions; the input
 * schemas (src/api/schemas.ts) use them and never echo the value they refuse.
 */

/** IBAN length by country, from the SWIFT IBAN registry. A country not listed is refused. */
export const IBAN_LENGTH: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15,
  OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31, SD: 18,
  SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22,
  VG: 24, XK: 20,
};

/** An IBAN as written for people ("DE89 3704 0044 …", any case) in its electronic form ("DE8937040044…"). */
export function compactIban(text: string): string {
  return text.replace(/ /g, "").toUpperCase();
}

/** A valid IBAN in electronic form: a listed country, its length, and check digits that make mod 97 equal 1. */
export function isIban(iban: string): boolean {
  if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  if (IBAN_LENGTH[iban.slice(0, 2)] !== iban.length) return false;
  return mod97(iban.slice(4) + iban.slice(0, 4)) === 1;
}

/** The remainder mod 97 of the number a letter-and-digit string stands for (A = 10 … Z = 35), digit by digit. */
function mod97(text: string): number {
  let remainder = 0;
  for (const ch of text) {
    const value = Number.parseInt(ch, 36);
    remainder = (remainder * (value < 10 ? 10 : 100) + value) % 97;
  }
  return remainder;
}

/**
 * A US ABA routing number: nine digits, a Federal Reserve prefix (00–12, 21–32, 61–72, 80), and the
 * checksum 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10).
 */
export function isAbaRouting(routing: string): boolean {
  if (!/^[0-9]{9}$/.test(routing)) return false;
  const prefix = Number(routing.slice(0, 2));
  if (!(prefix <= 12 || (prefix >= 21 && prefix <= 32) || (prefix >= 61 && prefix <= 72) || prefix === 80)) return false;
  const d = [...routing].map(Number) as [number, number, number, number, number, number, number, number, number];
  return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 === 0;
}

/** An account number as people write it ("0123-4567 89") with only its digits. */
export function digitsOnly(text: string): string {
  return text.replace(/[ -]/g, "");
}

/** A US account number: 4 to 17 digits. */
export const US_ACCOUNT = /^[0-9]{4,17}$/;
/** A Kenyan bank's two-digit code (Central Bank of Kenya), and an account at it: 6 to 16 digits. */
export const KE_BANK_CODE = /^[0-9]{2}$/;
export const KE_ACCOUNT = /^[0-9]{6,16}$/;
/** A bank account saved at the payment provider (Stripe): `ba_…` or a one-time `btok_…`. */
export const PROVIDER_BANK_TOKEN = /^(?:ba|btok)_[A-Za-z0-9]{14,64}$/;
/** A Stripe connected account (Connect), paid by a transfer: `acct_…`. */
export const PROVIDER_ACCOUNT = /^acct_[A-Za-z0-9]{8,64}$/;

/**
 * Destinations the payment provider itself holds, so Coffer can pay them through Stripe (when it is
 * configured: src/workers/payout-worker.ts): a bank account or token saved at Stripe (a payout) and
 * a connected account (a Connect transfer). Raw bank numbers (`bank`, `us_bank`, `ke_bank`) stay
 * with payout processors, who move them by hand (Stripe pays only accounts it holds).
 */
export const PROVIDER_DESTINATION_TYPES = ["bank_token", "stripe_account"] as const;

export function paidByProvider(destinationType: unknown): boolean {
  return (PROVIDER_DESTINATION_TYPES as readonly unknown[]).includes(destinationType);
}
