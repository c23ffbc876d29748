/**
 * The largest amount one command may move, per asset, in minor units. The host builds each machine
 * with the configured maximum (MAX_AMOUNT, see actors/wallet-kind.ts and chama-kind.ts), so the
 * machines refuse an oversized amount themselves, whichever path the command took. Until then
 * (pure tests) a machine only refuses what numeric(78,0) could not hold.
 */
export type AmountCeiling = (asset: string) => bigint;

export const STORABLE_CEILING: AmountCeiling = () => 10n ** 60n;
