/**
 * Deterministic pseudo-randomness for the simulator: stable short hashes (ids, conversation keys,
 * filler choice) and a seeded PRNG (fault rates).
 *
 * Invariant: the same inputs give the same outputs in every process and on every run, so a
 * simulated conversation or benchmark can be replayed exactly.
 */
import { hash } from "node:crypto";

/** Hex digest of the parts; the separator keeps ("ab","c") and ("a","bc") apart. */
export function shortHash(parts: readonly (string | number)[], hexChars = 16): string {
  return hash("sha1", parts.join("\u0000"), "hex").slice(0, hexChars);
}

/** mulberry32: tiny, fast and good enough to spread fault draws; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
