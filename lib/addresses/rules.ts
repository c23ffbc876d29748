/**
 * What an address check answers: ok, or the one rule the address broke. Rules are a closed set of
 * stable names (they travel in problem details and tests match them); each has one sentence, ours,
 * that never quotes the address.
 */
export const ADDRESS_RULES = {
  format: "it is not in any form this network uses",
  characters: "it holds characters this network's addresses never use",
  "mixed-case": "it mixes upper and lower case (Bech32 is written all in one case)",
  checksum: "its checksum does not match (a mistyped or changed character)",
  "checksum-variant": "segwit version 0 is written in Bech32 and versions 1 to 16 in Bech32m (BIP-350)",
  network: "it belongs to another network (its prefix or version byte is another network's)",
  version: "its version byte is not a pay-to-pubkey-hash or pay-to-script-hash one",
  "witness-version": "its witness version is above 16",
  "program-length": "its witness program has the wrong length (2 to 40 bytes; 20 or 32 for version 0)",
  padding: "its data has invalid padding",
  eip55: "it mixes upper and lower case that does not match its EIP-55 checksum",
  length: "it has the wrong length",
  separators: "a separator (- _ .) stands at its start or end, or next to another",
  tag: "its tag byte is not a known one (bounceable or not, testnet flag or not)",
  workchain: "its workchain is not 0 (basechain) or -1 (masterchain)",
  amount: "the invoice's amount is malformed",
  "amount-mismatch": "the invoice's amount is not the withdrawal's amount",
  expired: "the invoice has expired",
  signature: "the invoice's signature does not recover its payee",
  asset: "this network does not carry the withdrawal's asset",
} as const;

export type AddressRule = keyof typeof ADDRESS_RULES;

export type AddressCheck = { ok: true } | { ok: false; rule: AddressRule };

export const OK: AddressCheck = Object.freeze({ ok: true });

export function broke(rule: AddressRule): AddressCheck {
  return { ok: false, rule };
}

/** Upper and lower case letters both present: how Bech32 strings (addresses, invoices) are refused whole. */
export function isMixedCase(text: string): boolean {
  return text !== text.toLowerCase() && text !== text.toUpperCase();
}
