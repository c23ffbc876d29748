/**
 * Stripe's test-mode magic values the stand-in honours: test PaymentMethods (`pm_card_…`), test
 * bank accounts for payouts, and destinations for Connect transfers. The README lists them.
 */

export interface CardDecline {
  code: string;
  decline_code: string;
  message: string;
}

export interface TestCard {
  brand: string;
  last4: string;
  funding: "credit" | "debit" | "prepaid";
  country: string;
  decline?: CardDecline;
  /** A dispute is opened right after the payment succeeds. */
  dispute?: { reason: string; inquiry: boolean };
  /** Refunds start `succeeded`, then turn `failed` (`charge.refund.updated`). */
  refundFails?: boolean;
}

const DECLINED = "Your card was declined.";

function declined(decline_code: string, message = DECLINED): CardDecline {
  return { code: "card_declined", decline_code, message };
}

export const TEST_CARDS: Record<string, TestCard> = {
  pm_card_visa: { brand: "visa", last4: "4242", funding: "credit", country: "US" },
  pm_card_visa_debit: { brand: "visa", last4: "5556", funding: "debit", country: "US" },
  pm_card_mastercard: { brand: "mastercard", last4: "4444", funding: "credit", country: "US" },
  pm_card_mastercard_debit: { brand: "mastercard", last4: "8210", funding: "debit", country: "US" },
  pm_card_mastercard_prepaid: { brand: "mastercard", last4: "5100", funding: "prepaid", country: "US" },
  pm_card_amex: { brand: "amex", last4: "8431", funding: "credit", country: "US" },
  pm_card_discover: { brand: "discover", last4: "1117", funding: "credit", country: "US" },
  pm_card_diners: { brand: "diners", last4: "0004", funding: "credit", country: "US" },
  pm_card_jcb: { brand: "jcb", last4: "0505", funding: "credit", country: "JP" },
  pm_card_unionpay: { brand: "unionpay", last4: "0005", funding: "credit", country: "CN" },
  pm_card_bypassPending: { brand: "visa", last4: "0077", funding: "credit", country: "US" },
  pm_card_chargeDeclined: { brand: "visa", last4: "0002", funding: "credit", country: "US", decline: declined("generic_decline") },
  pm_card_chargeDeclinedInsufficientFunds: {
    brand: "visa",
    last4: "9995",
    funding: "credit",
    country: "US",
    decline: declined("insufficient_funds", "Your card has insufficient funds."),
  },
  pm_card_chargeDeclinedLostCard: { brand: "visa", last4: "9987", funding: "credit", country: "US", decline: declined("lost_card") },
  pm_card_chargeDeclinedStolenCard: { brand: "visa", last4: "9979", funding: "credit", country: "US", decline: declined("stolen_card") },
  pm_card_chargeDeclinedFraudulent: { brand: "visa", last4: "0019", funding: "credit", country: "US", decline: declined("fraudulent") },
  pm_card_chargeDeclinedExpiredCard: {
    brand: "visa",
    last4: "0069",
    funding: "credit",
    country: "US",
    decline: { code: "expired_card", decline_code: "expired_card", message: "Your card has expired." },
  },
  pm_card_chargeDeclinedIncorrectCvc: {
    brand: "visa",
    last4: "0127",
    funding: "credit",
    country: "US",
    decline: { code: "incorrect_cvc", decline_code: "incorrect_cvc", message: "Your card's security code is incorrect." },
  },
  pm_card_chargeDeclinedProcessingError: {
    brand: "visa",
    last4: "0119",
    funding: "credit",
    country: "US",
    decline: {
      code: "processing_error",
      decline_code: "processing_error",
      message: "An error occurred while processing your card. Try again in a little bit.",
    },
  },
  pm_card_createDispute: { brand: "visa", last4: "0259", funding: "credit", country: "US", dispute: { reason: "fraudulent", inquiry: false } },
  pm_card_createDisputeProductNotReceived: {
    brand: "visa",
    last4: "2685",
    funding: "credit",
    country: "US",
    dispute: { reason: "product_not_received", inquiry: false },
  },
  pm_card_createDisputeInquiry: {
    brand: "visa",
    last4: "1976",
    funding: "credit",
    country: "US",
    dispute: { reason: "fraudulent", inquiry: true },
  },
  pm_card_refundFail: { brand: "visa", last4: "5126", funding: "credit", country: "US", refundFails: true },
};

export interface PayoutFailure {
  code: string;
  message: string;
}

/**
 * A payout fails when its destination contains one of these markers (case-insensitive), like
 * Stripe's test bank tokens (`btok_us_verified_noAccount`) and test account numbers
 * (`000111111116`). Every other destination is paid.
 */
export const PAYOUT_FAILURES: { markers: string[]; failure: PayoutFailure }[] = [
  {
    markers: ["noaccount", "111111116"],
    failure: {
      code: "no_account",
      message: "The bank account details on file are probably incorrect. No bank account could be located with those details.",
    },
  },
  { markers: ["accountclosed", "111111113"], failure: { code: "account_closed", message: "The bank account has been closed." } },
  {
    markers: ["insufficientfunds", "222222227"],
    failure: { code: "insufficient_funds", message: "Your Stripe account has insufficient funds to cover the payout." },
  },
  {
    markers: ["debitnotauthorized", "333333335"],
    failure: { code: "debit_not_authorized", message: "Debit transactions are not approved on the bank account." },
  },
  {
    markers: ["invalidcurrency", "444444440"],
    failure: { code: "invalid_currency", message: "The bank was unable to process this payout because of its currency." },
  },
  { markers: ["couldnotprocess", "fail"], failure: { code: "could_not_process", message: "The bank could not process this payout." } },
];

export function payoutFailureFor(destination: string): PayoutFailure | undefined {
  const d = destination.toLowerCase();
  return PAYOUT_FAILURES.find((f) => f.markers.some((m) => d.includes(m)))?.failure;
}

export const DEFAULT_PAYOUT_DESTINATION = "ba_standin_default";

/** Payout destinations the stand-in accepts: bank accounts, bank tokens, debit cards. */
export function isPayoutDestination(destination: string): boolean {
  return /^(ba|btok|card)_[A-Za-z0-9_]+$/.test(destination);
}

/** Connect destinations: `acct_…`; one containing `missing` does not exist. */
export function isKnownAccount(destination: string): boolean {
  return /^acct_[A-Za-z0-9_]+$/.test(destination) && !destination.toLowerCase().includes("missing");
}

/** Stripe's minimum charge amounts (minor units) for the currencies it lists; others: 1. */
export const MINIMUM_AMOUNT: Record<string, number> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50, gbp: 30,
  hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50, pln: 200, ron: 200,
  sek: 300, sgd: 50, thb: 1000,
};

/** Stripe's largest amount for a charge: 99 999 999 minor units. */
export const MAXIMUM_AMOUNT = 99_999_999;

/** Stand-in fee conventions (documented): card charge 2.9% + 30, dispute 1500, others 0. */
export function cardFee(amount: number): number {
  return Math.round(amount * 0.029) + 30;
}
export const DISPUTE_FEE = 1500;
