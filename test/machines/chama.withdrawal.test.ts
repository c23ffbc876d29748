import { describe, expect, test } from "bun:test";
import {
  type ChamaWithdrawalStatus,
  type ChamaWithdrawalStep,
  ENDED_CHAMA_WITHDRAWAL_STATUSES,
  isOpenStatus,
  nextChamaWithdrawalStatus,
  OPEN_CHAMA_WITHDRAWAL_STATUSES,
} from "../../machines/chama.withdrawal";

const STEPS: ChamaWithdrawalStep[] = ["submit", "review", "approve", "reject", "park", "continue", "complete", "fail", "cancel", "expire"];

/** The whole legal table; every pair not listed here must be refused. */
const LEGAL: Record<ChamaWithdrawalStatus, Partial<Record<ChamaWithdrawalStep, ChamaWithdrawalStatus>>> = {
  requested: { submit: "pending_approval" },
  pending_approval: {
    review: "pending_approval",
    approve: "approved",
    reject: "rejected",
    park: "manual_review",
    cancel: "cancelled",
    expire: "expired",
  },
  manual_review: { review: "manual_review", approve: "approved", reject: "rejected", cancel: "cancelled", expire: "expired" },
  approved: { continue: "processing", park: "manual_review", cancel: "cancelled", expire: "expired" },
  processing: { complete: "completed", fail: "failed" },
  completed: {},
  failed: {},
  rejected: {},
  expired: {},
  cancelled: {},
};

describe("the chama withdrawal status table", () => {
  for (const [status, legal] of Object.entries(LEGAL) as [ChamaWithdrawalStatus, Partial<Record<ChamaWithdrawalStep, ChamaWithdrawalStatus>>][]) {
    for (const s of STEPS) {
      const expected = legal[s];
      test(`${s} from ${status} ${expected ? `goes to ${expected}` : "is refused"}`, () => {
        expect(nextChamaWithdrawalStatus(status, s)).toBe(expected);
      });
    }
  }

  test("open statuses are exactly those with a way out; ended ones have none", () => {
    for (const status of OPEN_CHAMA_WITHDRAWAL_STATUSES) {
      expect(isOpenStatus(status)).toBe(true);
      expect(Object.keys(LEGAL[status]).length).toBeGreaterThan(0);
    }
    for (const status of ENDED_CHAMA_WITHDRAWAL_STATUSES) {
      expect(isOpenStatus(status)).toBe(false);
      expect(LEGAL[status]).toEqual({});
    }
  });

  test("money leaves only through processing: nothing reaches completed without a payout in flight", () => {
    for (const [status, legal] of Object.entries(LEGAL)) {
      if (status !== "processing") expect(Object.values(legal)).not.toContain("completed");
    }
  });
});
