/**
 * The event outlet of one running turn.
 *
 * - `emit` queues an event; everything queued before the event loop turns (setImmediate) goes out
 *   in one append call, and calls run one after another, so events keep the order they were
 *   emitted in;
 * - `delta` coalesces LLM text: one `llm_output_delta` per `deltaFlushMs` or `deltaFlushChars`,
 *   flushed before any other event so deltas never overtake what follows them;
 * - the first failure (e.g. `LeaseLostError`) is kept and rethrown by every later `flush`, so
 *   the turn stops instead of writing a log with a hole;
 * - an observer (the turn monitor) sees every event when it is emitted and model text when it
 *   arrives, before coalescing; `dispose` closes it.
 */
import type { AppendOptions, EventAppender, EventTarget, PendingEvent } from "./appender.js";
import type { EventType } from "./envelope.js";

export interface DeltaSettings {
  deltaFlushMs: number;
  deltaFlushChars: number;
}

/** Watches a turn's output as it happens. Must not throw and must return at once. */
export interface EmitObserver {
  event(type: EventType, data: Record<string, unknown>, at: number): void;
  text(text: string, at: number): void;
  close(): void;
}

interface OpenDelta {
  text: string;
  step: string;
  data: Record<string, unknown>;
  ts: number;
}

export class TurnEmitter {
  private queue: PendingEvent[] = [];
  private chain: Promise<void> = Promise.resolve();
  private scheduled = false;
  private failure: Error | null = null;
  private openDelta: OpenDelta | null = null;
  private deltaTimer: NodeJS.Timeout | null = null;
  private lastSeqSeen = 0;
  private deltaCount = 0;

  constructor(
    private readonly appender: EventAppender,
    private readonly target: EventTarget,
    private readonly settings: DeltaSettings,
    private readonly fence: string | undefined,
    private readonly observer?: EmitObserver,
  ) {}

  get lastSeq(): number {
    return this.lastSeqSeen;
  }

  emit(type: EventType, step: string, data: Record<string, unknown>): void {
    this.closeDelta();
    const ts = Date.now();
    this.queue.push({ type, step, data, ts });
    this.observer?.event(type, data, ts);
    this.schedule();
  }

  /** Adds streamed model text; delta events get step keys `<stepPrefix>.d<n>`. */
  delta(text: string, stepPrefix: string, data: Record<string, unknown>): void {
    if (text.length === 0) return;
    this.observer?.text(text, Date.now());
    if (!this.openDelta) {
      const step = `${stepPrefix}.d${this.deltaCount++}`;
      this.openDelta = { text: "", step, data, ts: Date.now() };
      this.deltaTimer = setTimeout(() => {
        this.closeDelta();
        this.schedule();
      }, this.settings.deltaFlushMs);
    }
    this.openDelta.text += text;
    if (this.openDelta.text.length >= this.settings.deltaFlushChars) {
      this.closeDelta();
      this.schedule();
    }
  }

  /** Resolves when everything emitted so far is appended; rejects with the first failure. */
  async flush(options: Omit<AppendOptions, "fence"> = {}): Promise<void> {
    this.closeDelta();
    if (this.queue.length > 0) this.enqueueWrite(options);
    await this.chain;
    if (this.failure) throw this.failure;
  }

  /** Emits the turn's last event and waits for it; returns its seq. */
  async emitTerminal(step: string, data: Record<string, unknown>): Promise<number> {
    this.emit("turn_terminal", step, data);
    await this.flush({ terminal: true });
    return this.lastSeqSeen;
  }

  /** Stops timers and closes the observer; queued events are dropped (used when the turn is abandoned). */
  dispose(): void {
    this.observer?.close();
    if (this.deltaTimer) clearTimeout(this.deltaTimer);
    this.deltaTimer = null;
    this.openDelta = null;
    this.queue = [];
  }

  private closeDelta(): void {
    if (this.deltaTimer) clearTimeout(this.deltaTimer);
    this.deltaTimer = null;
    const open = this.openDelta;
    if (!open) return;
    this.openDelta = null;
    this.queue.push({
      type: "llm_output_delta",
      step: open.step,
      ts: open.ts,
      data: { ...open.data, delta: open.text },
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.queue.length > 0) this.enqueueWrite({});
    });
  }

  private enqueueWrite(options: Omit<AppendOptions, "fence">): void {
    const batch = this.queue;
    this.queue = [];
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        const seqs = await this.appender.appendBatch(this.target, batch, {
          ...options,
          fence: this.fence,
        });
        for (const seq of seqs) if (seq > this.lastSeqSeen) this.lastSeqSeen = seq;
      } catch (err) {
        this.failure = err as Error;
      }
    });
  }
}
