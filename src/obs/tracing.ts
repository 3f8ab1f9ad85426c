/**
 * OpenTelemetry tracing of a farm process: a tracer that exports spans over OTLP/HTTP when a
 * collector is configured, and a way to start a span inside a trace that began elsewhere (the
 * request that submitted a turn, possibly handled by another process long before).
 *
 * Invariants:
 * - tracing is on only when `tracing.otlpEndpoint` is set; unset, the tracer is the API's no-op
 *   one: spans are not recorded, buffered or sent, so the cost is a few no-op calls;
 * - nothing is registered globally (no global provider, no context manager): each role owns its
 *   provider, so several farms in one process (tests) never share one, and parents are passed
 *   explicitly (`trace.setSpan(ctx, span)`), which keeps nesting visible in the code;
 * - a caller's sampled flag decides for its own trace; a trace that starts here is sampled by
 *   its trace id (`sampleRatio`), so every attempt of a turn gets the same decision;
 * - `shutdown` exports what is buffered (for at most SHUTDOWN_FLUSH_MS) and then stops.
 */
import {
  type Context,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanOptions,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type IdGenerator,
  ParentBasedSampler,
  RandomIdGenerator,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { FarmConfig } from "../config/schema.js";
import { parseTraceparent } from "./trace-context.js";

/** The instrumentation scope every farm span is created under. */
const SCOPE = "wunder-farm";
/** One export gives up after this long. */
const EXPORT_TIMEOUT_MS = 10_000;
/**
 * The flush at shutdown gives up after this long: a worker's stop (grace period, then this) must
 * stay within the stop timeout process managers give it; spans of an unreachable collector are
 * lost either way.
 */
const SHUTDOWN_FLUSH_MS = 2_000;

export interface Tracing {
  readonly tracer: Tracer;
  /** Exports the spans still buffered, then stops exporting. */
  shutdown(): Promise<void>;
}

/** The tracing of one role (`worker`, …): its spans name the service `wunder-farm-<role>`. */
export function startTracing(config: FarmConfig["tracing"], role: string): Tracing {
  if (!config.otlpEndpoint) return { tracer: NOOP_TRACER, shutdown: async () => undefined };
  const exporter = new OTLPTraceExporter({
    url: tracesUrl(config.otlpEndpoint),
    timeoutMillis: EXPORT_TIMEOUT_MS,
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: `wunder-farm-${role}` }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    idGenerator: pinnableIds,
    spanProcessors: [new BatchSpanProcessor(exporter, { exportTimeoutMillis: EXPORT_TIMEOUT_MS })],
  });
  return {
    tracer: provider.getTracer(SCOPE),
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
      });
      await Promise.race([provider.shutdown(), gaveUp]).finally(() => clearTimeout(timer));
    },
  };
}

/** Where a trace started elsewhere continues: its id, and the caller's span if it named one. */
export interface TraceOrigin {
  traceId: string | null;
  /** A W3C `traceparent` of the same trace. */
  traceParent: string | null;
}

/**
 * Starts a span in the trace of `origin`: a child of the caller's span when it named one, else
 * the first span of that trace seen here (a root carrying the given trace id). Without a trace
 * id the span starts a trace of its own.
 */
export function startSpanInTrace(
  tracer: Tracer,
  name: string,
  options: SpanOptions,
  origin: TraceOrigin,
): Span {
  const caller = parseTraceparent(origin.traceParent ?? undefined);
  if (caller && caller.traceId === origin.traceId) {
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: caller.traceId,
      spanId: caller.parentId,
      // Only the sampled bit is defined; other bits must not be passed on as set.
      traceFlags: Number.parseInt(caller.flags, 16) & TraceFlags.SAMPLED,
      isRemote: true,
    });
    return tracer.startSpan(name, options, parent);
  }
  if (origin.traceId === null) return tracer.startSpan(name, { ...options, root: true });
  // The SDK takes a root span's trace id from its id generator, never from the caller.
  pinnedTraceId = origin.traceId;
  try {
    return tracer.startSpan(name, { ...options, root: true });
  } finally {
    pinnedTraceId = null;
  }
}

/** A context whose active span is `span`: how a span is passed as the parent of the next. */
export function contextWith(span: Span): Context {
  return trace.setSpan(ROOT_CONTEXT, span);
}

/** A provider without a delegate: its tracers are the API's no-op tracer. */
const NOOP_TRACER = new ProxyTracerProvider().getTracer(SCOPE);

/**
 * Random ids, except the trace id of the root span `startSpanInTrace` is starting right now.
 * Starting a span is synchronous, so the pin cannot leak into another span's start.
 */
let pinnedTraceId: string | null = null;
const randomIds = new RandomIdGenerator();
const pinnableIds: IdGenerator = {
  generateTraceId: () => pinnedTraceId ?? randomIds.generateTraceId(),
  generateSpanId: () => randomIds.generateSpanId(),
};

/** OTLP/HTTP's rule for a base endpoint: the traces path is appended to it. */
function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, "")}/v1/traces`;
}
