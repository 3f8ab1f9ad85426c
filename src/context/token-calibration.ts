/**
 * Per model, how the provider's reported prompt tokens relate to our raw estimate
 * (token-count.ts), learned from every call that reports usage.
 *
 * With plain numbers this is the ratio reported / estimated, smoothed by an exponential moving
 * average (alpha 0.3) that starts at 1. With `TokenCount`s it also learns how the ratio moves
 * with the prompt's share of non-Latin characters (s = nonLatinChars / tokens) — tokenizers
 * differ most there, so one ratio cannot fit both an English and a Chinese session:
 *
 *   ratio(s) = base + slope × s
 *
 * fitted by exponentially weighted least squares over the observed (s, reported / estimated)
 * pairs, the same weights as the moving average and the same prior (ratio 1 at s = 0), with a
 * tiny ridge on the slope. When every prompt has s = 0 (or numbers are passed) the slope stays 0
 * and `base` is exactly the moving average.
 *
 * Invariants: a model never seen has ratio 1; observed ratios are clamped to
 * [MIN_RATIO, MAX_RATIO] before they are learned and so is every applied ratio, so one odd report
 * cannot make the budget wildly wrong; an observation without a positive, finite estimate and
 * report is ignored. Use numbers or `TokenCount`s consistently for a model.
 */
import type { TokenCount } from "./token-count.js";

export const CALIBRATION_ALPHA = 0.3;
export const MIN_RATIO = 0.5;
export const MAX_RATIO = 2.0;
/** Keeps the slope defined (0) while every prompt has the same share. */
const SLOPE_RIDGE = 1e-4;

const clamp = (v: number) => Math.min(MAX_RATIO, Math.max(MIN_RATIO, v));

export type RawTokens = number | TokenCount;

/** Exponentially weighted moments of (1, s, s², ratio, s·ratio). */
interface Moments {
  w: number;
  s: number;
  ss: number;
  r: number;
  sr: number;
}

/** A model's calibration at one moment: ratio = base + slope × non-Latin share, clamped. */
export interface CalibrationFit {
  base: number;
  slope: number;
}
type Fit = CalibrationFit;

const PRIOR: Moments = { w: 1, s: 0, ss: 0, r: 1, sr: 0 };
const IDENTITY: Fit = { base: 1, slope: 0 };

function tokensOf(raw: RawTokens): number {
  return typeof raw === "number" ? raw : raw.tokens;
}

/** The prompt's non-Latin characters per raw token (0 for a plain number). */
export function nonLatinShare(raw: RawTokens): number {
  if (typeof raw === "number" || !(raw.tokens > 0)) return 0;
  return raw.nonLatinChars / raw.tokens;
}

function solve(m: Moments): Fit {
  const ss = m.ss + SLOPE_RIDGE;
  const det = m.w * ss - m.s * m.s;
  if (!(det > 0)) return { base: m.r / m.w, slope: 0 };
  return { base: (m.r * ss - m.s * m.sr) / det, slope: (m.w * m.sr - m.s * m.r) / det };
}

/** The ratio `fit` applies to a prompt with this non-Latin share. */
export function fitRatio(fit: CalibrationFit, share = 0): number {
  return clamp(fit.base + fit.slope * share);
}

/** `raw` scaled by `fit`, rounded up. */
export function calibratedTokens(fit: CalibrationFit, raw: RawTokens): number {
  return Math.ceil(tokensOf(raw) * fitRatio(fit, nonLatinShare(raw)));
}

export class TokenCalibration {
  private readonly moments = new Map<string, Moments>();
  private readonly fits = new Map<string, Fit>();

  constructor(private readonly alpha = CALIBRATION_ALPHA) {
    if (!(alpha > 0 && alpha <= 1)) throw new Error(`alpha must be in (0, 1], got ${alpha}`);
  }

  /** The ratio applied to a prompt with this non-Latin share (1 until a call was observed). */
  ratio(model: string, share = 0): number {
    return fitRatio(this.fit(model), share);
  }

  /** The model's current fit, a copy (a compaction records it so a resume can replay it). */
  fit(model: string): CalibrationFit {
    return { ...(this.fits.get(model) ?? IDENTITY) };
  }

  /**
   * Records one call: the provider counted `reportedTokens` for a prompt we estimated as
   * `estimated`. Returns the ratio now applied to a prompt like this one.
   */
  observe(model: string, reportedTokens: number, estimated: RawTokens): number {
    const tokens = tokensOf(estimated);
    const share = nonLatinShare(estimated);
    const valid =
      reportedTokens > 0 && Number.isFinite(reportedTokens) && tokens > 0 && Number.isFinite(share);
    if (!valid) return this.ratio(model, share);
    const observed = clamp(reportedTokens / tokens);
    const m = this.moments.get(model) ?? { ...PRIOR };
    const a = this.alpha;
    const keep = 1 - a;
    m.w = keep * m.w + a;
    m.s = keep * m.s + a * share;
    m.ss = keep * m.ss + a * share * share;
    m.r = keep * m.r + a * observed;
    m.sr = keep * m.sr + a * share * observed;
    this.moments.set(model, m);
    this.fits.set(model, solve(m));
    return this.ratio(model, share);
  }

  /** `raw` (our estimate) as the provider would count it, rounded up. */
  estimate(model: string, raw: RawTokens): number {
    return calibratedTokens(this.fit(model), raw);
  }

  /** Forgets one model's calibration, or every one. */
  reset(model?: string): void {
    if (model === undefined) {
      this.moments.clear();
      this.fits.clear();
    } else {
      this.moments.delete(model);
      this.fits.delete(model);
    }
  }
}
