/**
 * One output stream of a command, held in bounded memory: the first half of the cap and the last
 * half, with the middle dropped and counted.
 *
 * Invariants:
 * - memory stays within `maxBytes` plus the unused part of two chunks, however much is written;
 * - when at most `maxBytes` arrived, `text()` is exactly what arrived (decoded as UTF-8);
 * - otherwise `text()` is head + `\n…[N bytes omitted]…\n` + tail, N counting every byte not shown,
 *   including the few dropped so that no character is split at a cut.
 */
import { trimPartialEnd, trimPartialStart } from "./utf8.js";

export class CappedOutput {
  private readonly headMaxBytes: number;
  private readonly tailMaxBytes: number;
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private totalBytes = 0;

  constructor(maxBytes: number) {
    this.headMaxBytes = Math.ceil(maxBytes / 2);
    this.tailMaxBytes = Math.floor(maxBytes / 2);
  }

  write(chunk: Buffer): void {
    this.totalBytes += chunk.length;
    const toHead = Math.min(chunk.length, this.headMaxBytes - this.headBytes);
    if (toHead > 0) {
      this.head.push(chunk.subarray(0, toHead));
      this.headBytes += toHead;
    }
    if (toHead === chunk.length) return;
    this.tail.push(chunk.subarray(toHead));
    this.tailBytes += chunk.length - toHead;
    for (let first = this.tail[0]; first !== undefined; first = this.tail[0]) {
      const excess = this.tailBytes - this.tailMaxBytes;
      if (excess <= 0) break;
      if (first.length <= excess) this.tail.shift();
      else this.tail[0] = first.subarray(excess);
      this.tailBytes -= Math.min(first.length, excess);
    }
  }

  get truncated(): boolean {
    return this.totalBytes > this.headBytes + this.tailBytes;
  }

  text(): string {
    const head = Buffer.concat(this.head);
    const tail = Buffer.concat(this.tail);
    if (!this.truncated) return Buffer.concat([head, tail]).toString("utf8");
    const shownHead = trimPartialEnd(head);
    const shownTail = trimPartialStart(tail);
    const omitted = this.totalBytes - shownHead.length - shownTail.length;
    return `${shownHead.toString("utf8")}\n…[${omitted} bytes omitted]…\n${shownTail.toString("utf8")}`;
  }
}
