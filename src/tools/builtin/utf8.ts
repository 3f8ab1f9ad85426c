/**
 * Tidying the edges of UTF-8 bytes cut at an arbitrary offset, so that capped output decodes
 * without a stray U+FFFD where a character was split.
 *
 * Invariant: at most 3 bytes are dropped (the longest partial character); bytes that are not
 * valid UTF-8 anyway are left alone.
 */

const MAX_PARTIAL_BYTES = 3;

function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && (byte & 0xc0) === 0x80;
}

/** Length of the character a lead byte announces; 0 for a byte that cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 0;
}

/** `buf` without a character cut short at its end (`buf` was cut from a longer text). */
export function trimPartialEnd(buf: Buffer): Buffer {
  for (let back = 1; back <= Math.min(MAX_PARTIAL_BYTES, buf.length); back++) {
    const byte = buf[buf.length - back] as number;
    if (isContinuation(byte)) continue;
    // `byte` leads the last character: drop it if its sequence needs more bytes than are left.
    return sequenceLength(byte) > back ? buf.subarray(0, buf.length - back) : buf;
  }
  return buf;
}

/** `buf` without the tail of a character cut at its start (`buf` was cut from a longer text). */
export function trimPartialStart(buf: Buffer): Buffer {
  let start = 0;
  while (start < Math.min(MAX_PARTIAL_BYTES, buf.length) && isContinuation(buf[start])) start++;
  return isContinuation(buf[start]) ? buf : buf.subarray(start);
}
