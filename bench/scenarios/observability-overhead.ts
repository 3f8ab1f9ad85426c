/**
 * `observability-overhead`: the throughput scenario with the farm's observability on vs all off,
 * each arm on a fresh farm, interleaved (off, on, off, on, …) so drift on a noisy machine hits
 * both arms alike.
 *
 * - on: logs at info, read through a pipe as a log shipper would; traces exported over OTLP/HTTP
 *   to a local collector stand-in (counts spans); every process's `/metrics` scraped each second
 *   (15× Prometheus's usual rate, to make the cost visible);
 * - off: logs at error (a healthy run writes none), no trace exporter (the no-op tracer), no
 *   scrapes.
 *
 * Metric updates (counters, histograms) have no off switch: they run in both arms, so this
 * measures what an operator can turn off — log volume, span export, scraping.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { freePort } from "../../test/helpers/ports.js";
import type { BenchFarm } from "../farm-processes.js";
import type { TurnFlow } from "../load.js";
import { median, round } from "../stats.js";
import { throughput } from "./throughput.js";

export interface ObservabilityOverheadOptions {
  turns: number;
  warmupTurns: number;
  concurrency: number;
  users: number;
  repeats: number;
  flow: TurnFlow;
}

const SCRAPE_EVERY_MS = 1_000;

type StartFarm = <T>(
  env: Record<string, string>,
  drainLogs: boolean,
  run: (farm: BenchFarm) => Promise<T>,
) => Promise<T>;

/** An OTLP/HTTP traces endpoint that counts what it receives and answers like a collector. */
async function collectorStandIn(): Promise<{ url: string; spans(): number; close(): void }> {
  let spans = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString() || "{}") as {
          resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[];
        };
        for (const r of body.resourceSpans ?? []) {
          for (const s of r.scopeSpans ?? []) spans += s.spans?.length ?? 0;
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } catch {
        // Not OTLP/HTTP JSON (e.g. protobuf or gzip set through OTEL_* variables): say so.
        res.writeHead(415).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans: () => spans,
    close: () => server.close(),
  };
}

/** Scrapes `urls` every second until stopped; counts scrapes and the bytes read. */
function scrapeEverySecond(urls: string[]): { stop(): { scrapes: number; bytes: number } } {
  let scrapes = 0;
  let bytes = 0;
  const timer = setInterval(() => {
    for (const url of urls) {
      fetch(url)
        .then((r) => r.text())
        .then((text) => {
          scrapes += 1;
          bytes += text.length;
        })
        .catch(() => undefined);
    }
  }, SCRAPE_EVERY_MS);
  return {
    stop() {
      clearInterval(timer);
      return { scrapes, bytes };
    },
  };
}

export async function observabilityOverhead(
  startFarm: StartFarm,
  options: ObservabilityOverheadOptions,
  log: (line: string) => void,
) {
  const collector = await collectorStandIn();
  const arms: Record<"off" | "on", number[]> = { off: [], on: [] };
  const onDetails: Record<string, unknown>[] = [];
  const load = (farm: BenchFarm) => throughput(farm, options, log);
  try {
    for (let i = 0; i < options.repeats; i++) {
      log(`observability-overhead: round ${i + 1}/${options.repeats}, all off`);
      const off = await startFarm({ LOG_LEVEL: "error" }, false, load);
      arms.off.push(off.turns_per_s);

      log(`observability-overhead: round ${i + 1}/${options.repeats}, metrics+logs+tracing on`);
      const [workerPort, persisterPort] = [await freePort(), await freePort()];
      const spansBefore = collector.spans();
      const on = await startFarm(
        {
          LOG_LEVEL: "info",
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          METRICS_PORT: String(workerPort),
          PERSISTER_METRICS_PORT: String(persisterPort),
        },
        true,
        async (farm) => {
          const scraper = scrapeEverySecond([
            `${farm.apiUrl}/metrics`,
            `http://127.0.0.1:${workerPort}/metrics`,
            `http://127.0.0.1:${persisterPort}/metrics`,
          ]);
          const result = await load(farm);
          return { ...result, scraped: scraper.stop(), logBytes: farm.logBytes() };
        },
      );
      arms.on.push(on.turns_per_s);
      // After the farm stopped: its workers flushed their last spans.
      const turns = on.turns + options.warmupTurns;
      onDetails.push({
        log_bytes_per_turn: round(on.logBytes / turns),
        spans_per_turn: round((collector.spans() - spansBefore) / turns),
        scrapes: on.scraped.scrapes,
        scraped_kib: round(on.scraped.bytes / 1024),
      });
    }
  } finally {
    collector.close();
  }
  const off = median(arms.off);
  const on = median(arms.on);
  return {
    turns_per_run: options.turns,
    repeats: options.repeats,
    off_turns_per_s: arms.off,
    on_turns_per_s: arms.on,
    off_median_turns_per_s: off,
    on_median_turns_per_s: on,
    overhead_pct: round((1 - on / off) * 100),
    target_overhead_pct: 10,
    on_details: onDetails,
  };
}
