/**
 * Writes a response body in timed groups: the first after `firstDelayMs`, each next one
 * `gapMs` later. With no gap, everything left goes out in one write, since throughput (not
 * realism) is what zero delays are for.
 *
 * Invariants:
 * - at most one timer is pending per response, and it is cleared when the client disconnects,
 *   so an abandoned request costs nothing afterwards;
 * - nothing is written after the client is gone.
 */
import type { ServerResponse } from "node:http";

export function deliver(
  res: ServerResponse,
  headers: Record<string, string>,
  groups: readonly string[],
  firstDelayMs: number,
  gapMs: number,
): void {
  let next = 0;
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    timer = undefined;
    if (res.destroyed) return;
    const upTo = gapMs === 0 ? groups.length : next + 1;
    const text = groups.slice(next, upTo).join("");
    next = upTo;
    const done = next >= groups.length;
    if (!res.headersSent) {
      // A whole body in one go gets a length, so keep-alive needs no chunked framing.
      res.writeHead(
        200,
        done ? { ...headers, "content-length": String(Buffer.byteLength(text)) } : headers,
      );
    }
    if (done) {
      res.end(text);
    } else {
      res.write(text);
      timer = setTimeout(flush, gapMs);
    }
  };

  res.once("close", () => {
    if (timer) clearTimeout(timer);
  });
  if (firstDelayMs === 0) flush();
  else timer = setTimeout(flush, firstDelayMs);
}
