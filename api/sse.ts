/**
 * Server-sent events on an Express response: headers, frames, heartbeats, backpressure.
 *
 * Frames follow the WHATWG format: `id: <seq>`, `event: <type>`, `data: <one JSON line>`.
 * Envelope JSON never contains a raw newline, so `data` is always a single line.
 */
import type { Response } from "express";
import { sseConnections, sseEventsSent } from "../src/obs/metrics.js";

/** Browsers wait this long before reconnecting after a dropped stream. */
const RECONNECT_MS = 1_000;

export class SseWriter {
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly res: Response,
    heartbeatMs: number,
  ) {
    res.status(200);
    res.setHeader("Content-Type", "text/event-stream; charset=utf-8");
    res.setHeader("Cache-Control", "no-cache, no-transform");
    res.setHeader("Connection", "keep-alive");
    res.setHeader("X-Accel-Buffering", "no");
    res.flushHeaders();
    res.write(`retry: ${RECONNECT_MS}\n\n`);
    this.heartbeat = setInterval(() => res.write(": heartbeat\n\n"), heartbeatMs);
    sseConnections.inc();
    // However the response ends (client gone, error handler), the heartbeat stops with it.
    res.once("close", () => {
      clearInterval(this.heartbeat);
      sseConnections.dec();
    });
  }

  /** Writes events in one socket write; resolves once the socket can take more (backpressure). */
  async events(events: readonly { seq: number; type: string; envelope: string }[]): Promise<void> {
    if (this.res.writableEnded || this.res.destroyed) return;
    let frames = "";
    for (const e of events) frames += `id: ${e.seq}\nevent: ${e.type}\ndata: ${e.envelope}\n\n`;
    sseEventsSent.inc(events.length);
    const ok = this.res.write(frames);
    if (!ok)
      await new Promise<void>((resolve) => {
        const done = () => {
          this.res.off("drain", done);
          this.res.off("close", done);
          resolve();
        };
        this.res.once("drain", done);
        this.res.once("close", done);
      });
  }

  end(): void {
    clearInterval(this.heartbeat);
    if (!this.res.writableEnded) this.res.end();
  }
}
