/**
 * Live output of one call (`execute_command`'s stdout/stderr) as `tool_output_delta` events for
 * clients. Never part of the model's view: the model gets the result.
 *
 * Invariants:
 * - chunks are coalesced per stream: one event per `FLUSH_MS` or `FLUSH_CHARS`, whichever first,
 *   and a change of stream flushes, so the events keep the order the output came in;
 * - at most `MAX_STREAMED_CHARS` per call go out as deltas; beyond that one last delta says the
 *   rest is in the result (a runaway command cannot flood the event log);
 * - `close()` flushes what is pending and stops the timer; nothing is emitted after it.
 */
import type { OutputStream } from "../tool.js";

const FLUSH_MS = 100;
const FLUSH_CHARS = 8 * 1024;
const MAX_STREAMED_CHARS = 1024 * 1024;

export type DeltaSink = (index: number, stream: OutputStream, text: string) => void;

export class OutputDeltas {
  private pending = "";
  private stream: OutputStream = "stdout";
  private timer: NodeJS.Timeout | null = null;
  private streamedChars = 0;
  private index = 0;
  private closed = false;
  private capped = false;

  constructor(private readonly sink: DeltaSink) {}

  readonly write = (stream: OutputStream, text: string): void => {
    if (this.closed || this.capped || text.length === 0) return;
    if (stream !== this.stream) this.flush();
    this.stream = stream;
    const room = MAX_STREAMED_CHARS - this.streamedChars - this.pending.length;
    if (text.length >= room) {
      this.pending += text.slice(0, Math.max(0, room));
      this.flush();
      this.capped = true;
      this.sink(this.index++, stream, "\n…[live output stops here; the result holds the rest]…\n");
      return;
    }
    this.pending += text;
    if (this.pending.length >= FLUSH_CHARS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  };

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0) return;
    const text = this.pending;
    this.pending = "";
    this.streamedChars += text.length;
    this.sink(this.index++, this.stream, text);
  }
}
