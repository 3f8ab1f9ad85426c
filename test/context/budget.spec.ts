/**
 * The budget formula (wunder's): limit = window − reserved output − margin, trigger = ⌊limit ×
 * ratio⌋, and its floors when a reserve leaves (almost) nothing.
 */
import { expect } from "chai";
import { contextBudget } from "../../src/context/budget.js";

describe("context: budget", () => {
  it("limits a request to window − output reserve − safety margin, and triggers at 0.9 of it", () => {
    const budget = contextBudget({
      windowTokens: 8_192,
      reservedOutputTokens: 2_048,
      safetyMarginTokens: 512,
      triggerRatio: 0.9,
    });
    expect(budget).to.deep.equal({ windowTokens: 8_192, limitTokens: 5_632, triggerTokens: 5_068 });
  });

  it("matches wunder's worked example (156,000 window, 8,192 reserve)", () => {
    const budget = contextBudget({
      windowTokens: 156_000,
      reservedOutputTokens: 8_192,
      safetyMarginTokens: 512,
      triggerRatio: 0.9,
    });
    expect(budget.limitTokens).to.equal(147_296);
    expect(budget.triggerTokens).to.equal(Math.floor(147_296 * 0.9));
  });

  it("keeps a quarter of the window for prompts when the reserve would leave less", () => {
    const budget = contextBudget({
      windowTokens: 4_096,
      reservedOutputTokens: 4_096,
      safetyMarginTokens: 512,
      triggerRatio: 0.9,
    });
    expect(budget.limitTokens).to.equal(1_024);
  });

  it("rounds the trigger down (compaction starts at or above it)", () => {
    const budget = contextBudget({
      windowTokens: 10_000,
      reservedOutputTokens: 1_000,
      safetyMarginTokens: 0,
      triggerRatio: 0.5,
    });
    expect(budget.triggerTokens).to.equal(4_500);
    const odd = contextBudget({
      windowTokens: 10_001,
      reservedOutputTokens: 0,
      safetyMarginTokens: 0,
      triggerRatio: 0.9,
    });
    expect(odd.triggerTokens).to.equal(9_000);
  });
});
