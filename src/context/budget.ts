/**
 * How many tokens a request to a model may hold, and when compaction starts (wunder's formula).
 *
 *   limit   = window − reserved output − safety margin   (a request never exceeds it)
 *   trigger = ⌊limit × triggerRatio⌋                       (compaction starts at or above it)
 *
 * The reserve is the model's `maxOutputTokens` (a provider refuses a prompt whose prompt plus
 * `max_tokens` exceeds the window); the margin absorbs what the estimate misses.
 */

export interface BudgetSettings {
  windowTokens: number;
  reservedOutputTokens: number;
  safetyMarginTokens: number;
  triggerRatio: number;
}

export interface ContextBudget {
  windowTokens: number;
  limitTokens: number;
  triggerTokens: number;
}

/** The smallest limit a budget may have: a window too small for its reserve still takes a prompt. */
const MIN_LIMIT_TOKENS = 256;

export function contextBudget(s: BudgetSettings): ContextBudget {
  const room = s.windowTokens - s.reservedOutputTokens - s.safetyMarginTokens;
  // A reserve as large as the window (a misconfiguration) would leave nothing: keep a quarter.
  const limitTokens = Math.max(
    Math.min(room, s.windowTokens),
    Math.floor(s.windowTokens / 4),
    MIN_LIMIT_TOKENS,
  );
  return {
    windowTokens: s.windowTokens,
    limitTokens,
    triggerTokens: Math.floor(limitTokens * s.triggerRatio),
  };
}
