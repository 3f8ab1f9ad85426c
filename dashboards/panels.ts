/**
 * The farm's Grafana dashboards as data: one entry per dashboard, one per panel, each with its
 * query, unit and description. dashboards/build.ts renders them to dashboards/grafana/*.json;
 * test/obs/dashboards.spec.ts checks the JSON is what this file renders and that every query is
 * valid PromQL.
 *
 * Queries filter by the `$job` and `$instance` variables (`S` below) and use `$__rate_interval`
 * for rates, so they work at any scrape interval.
 */

export interface PanelSpec {
  title: string;
  description: string;
  /** A Grafana unit id: s, ms, percentunit, short, reqps, ops, bytes, none… */
  unit: string;
  /** One query per series group; `legend` names the series. */
  targets: { expr: string; legend: string }[];
  type?: "timeseries" | "stat";
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  panels: PanelSpec[];
}

/** The selector every query carries: the job and instance variables. */
const S = 'job=~"$job", instance=~"$instance"';
const rate = (metric: string, labels = "") =>
  `rate(${metric}{${S}${labels ? `, ${labels}` : ""}}[$__rate_interval])`;
const quantile = (q: number, metric: string, by = "") =>
  `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ""}) (${rate(`${metric}_bucket`)}))`;

export const DASHBOARDS: DashboardSpec[] = [
  {
    uid: "farm-overview",
    title: "wunder-farm / Overview (SLOs)",
    description:
      "Availability, latency and turn success against the SLOs of docs/operations.md#alerts.",
    panels: [
      {
        title: "Turn success (SLO 99%)",
        description:
          "Share of ended turns that completed (cancelled turns excluded), over the range.",
        unit: "percentunit",
        type: "stat",
        targets: [
          {
            expr: `(sum(increase(farm_turns_finished_total{${S}, status="completed"}[$__range])) or 0 * sum(increase(farm_turns_finished_total{${S}, status="failed"}[$__range]))) / clamp_min(sum(increase(farm_turns_finished_total{${S}, status=~"completed|failed"}[$__range])), 1)`,
            legend: "success",
          },
        ],
      },
      {
        title: "API availability (SLO 99.9%)",
        description: "Share of API requests answered without a 5xx, over the range.",
        unit: "percentunit",
        type: "stat",
        targets: [
          {
            expr: `sum(increase(http_server_request_duration_seconds_count{${S}, status_code!~"5.."}[$__range])) / clamp_min(sum(increase(http_server_request_duration_seconds_count{${S}}[$__range])), 1)`,
            legend: "available",
          },
        ],
      },
      {
        title: "Turn failure budget burn",
        description:
          "Failed share of ended turns (5 min and 1 h) against the 1% budget; 14.4× pages.",
        unit: "percentunit",
        targets: [
          { expr: "farm:turn_failure_ratio:rate5m", legend: "5 min" },
          { expr: "farm:turn_failure_ratio:rate1h", legend: "1 h" },
        ],
      },
      {
        title: "Turns ended per second",
        description: "Turns ended by workers, by status.",
        unit: "ops",
        targets: [
          {
            expr: `sum by (status) (${rate("farm_turns_finished_total")})`,
            legend: "{{status}}",
          },
        ],
      },
      {
        title: "Turn duration p50 / p95",
        description: "First start to end of completed and failed turns.",
        unit: "s",
        targets: [
          { expr: quantile(0.5, "farm_turn_duration_seconds"), legend: "p50" },
          { expr: quantile(0.95, "farm_turn_duration_seconds"), legend: "p95" },
        ],
      },
      {
        title: "API latency p95 by route",
        description:
          "HTTP request duration by route template (SSE streams last as long as their turn).",
        unit: "s",
        targets: [
          {
            expr: quantile(0.95, "http_server_request_duration_seconds", "route"),
            legend: "{{route}}",
          },
        ],
      },
    ],
  },
  {
    uid: "farm-turns-llm",
    title: "wunder-farm / Turns and models",
    description: "Queue wait, model calls, time to first chunk, tokens, retries and breakers.",
    panels: [
      {
        title: "Turn queue wait p50 / p95",
        description: "Submit to first start on a worker.",
        unit: "s",
        targets: [
          { expr: quantile(0.5, "farm_turn_queue_wait_seconds"), legend: "p50" },
          { expr: quantile(0.95, "farm_turn_queue_wait_seconds"), legend: "p95" },
        ],
      },
      {
        title: "Model calls per second by outcome",
        description: "One try of a model call; error_type is empty on success.",
        unit: "reqps",
        targets: [
          {
            expr: `sum by (gen_ai_request_model, error_type) (${rate("gen_ai_client_operation_duration_seconds_count")})`,
            legend: "{{gen_ai_request_model}} {{error_type}}",
          },
        ],
      },
      {
        title: "Model call duration p95",
        description: "Request to last chunk, per model.",
        unit: "s",
        targets: [
          {
            expr: quantile(
              0.95,
              "gen_ai_client_operation_duration_seconds",
              "gen_ai_request_model",
            ),
            legend: "{{gen_ai_request_model}}",
          },
        ],
      },
      {
        title: "Time to first chunk p50 / p95",
        description: "Request to the first streamed chunk.",
        unit: "s",
        targets: [
          {
            expr: quantile(0.5, "gen_ai_client_operation_time_to_first_chunk_seconds"),
            legend: "p50",
          },
          {
            expr: quantile(0.95, "gen_ai_client_operation_time_to_first_chunk_seconds"),
            legend: "p95",
          },
        ],
      },
      {
        title: "Tokens per second by type",
        description: "Billed tokens as the providers reported them (consumption).",
        unit: "short",
        targets: [
          {
            expr: `sum by (gen_ai_token_type) (${rate("gen_ai_client_token_usage_sum")})`,
            legend: "{{gen_ai_token_type}}",
          },
        ],
      },
      {
        title: "Compactions per second",
        description: "Context compactions by reason and strategy.",
        unit: "ops",
        targets: [
          {
            expr: `sum by (reason, strategy) (${rate("farm_compactions_total")})`,
            legend: "{{reason}} {{strategy}}",
          },
        ],
      },
      {
        title: "Model endpoint breakers",
        description: "0 closed, 1 half-open, 2 open, per endpoint.",
        unit: "none",
        targets: [
          {
            expr: `max by (endpoint) (farm_llm_breaker_state{${S}})`,
            legend: "{{endpoint}}",
          },
        ],
      },
    ],
  },
  {
    uid: "farm-tools",
    title: "wunder-farm / Tools",
    description: "Tool calls, their duration and outcomes, retries and breakers.",
    panels: [
      {
        title: "Tool calls per second by outcome",
        description: "One call, all tries.",
        unit: "ops",
        targets: [
          {
            expr: `sum by (gen_ai_tool_name, outcome) (${rate("gen_ai_execute_tool_duration_seconds_count")})`,
            legend: "{{gen_ai_tool_name}} {{outcome}}",
          },
        ],
      },
      {
        title: "Tool call duration p95",
        description: "Per tool, all tries, lock wait excluded.",
        unit: "s",
        targets: [
          {
            expr: quantile(0.95, "gen_ai_execute_tool_duration_seconds", "gen_ai_tool_name"),
            legend: "{{gen_ai_tool_name}}",
          },
        ],
      },
      {
        title: "Tool source breakers",
        description: "0 closed, 1 half-open, 2 open, per tool source.",
        unit: "none",
        targets: [
          { expr: `max by (breaker) (farm_tool_breaker_state{${S}})`, legend: "{{breaker}}" },
        ],
      },
    ],
  },
  {
    uid: "farm-queue",
    title: "wunder-farm / Queue, fairness and workers",
    description:
      "Where turns are, how old the oldest waiting one is, dispatch by tier, worker slots and stalls.",
    panels: [
      {
        title: "Turns by place",
        description:
          "Waiting in the fair FIFOs, dispatched to workers, active, parked for a model's budget.",
        unit: "short",
        targets: [{ expr: `sum by (state) (farm_queue_jobs{${S}})`, legend: "{{state}}" }],
      },
      {
        title: "Oldest waiting / runnable turn",
        description: "Age of the oldest undispatched turn, and of the oldest that could run now.",
        unit: "s",
        targets: [
          { expr: `max(farm_queue_oldest_waiting_age_seconds{${S}})`, legend: "waiting" },
          { expr: `max(farm_queue_oldest_runnable_age_seconds{${S}})`, legend: "runnable" },
        ],
      },
      {
        title: "Dispatches per second by tier",
        description:
          "Turns the fair scheduler handed to workers, by the user's tier. While tiers compete, the split follows their weights.",
        unit: "ops",
        targets: [
          {
            expr: `sum by (tier) (${rate("farm_scheduler_dispatched_total")})`,
            legend: "{{tier}}",
          },
        ],
      },
      {
        title: "Dispatch share by tier",
        description:
          "Each tier's share of the dispatches over the range; compare with weight × active users.",
        unit: "percentunit",
        targets: [
          {
            expr: `sum by (tier) (increase(farm_scheduler_dispatched_total{${S}}[$__range])) / scalar(clamp_min(sum(increase(farm_scheduler_dispatched_total{${S}}[$__range])), 1))`,
            legend: "{{tier}}",
          },
        ],
      },
      {
        title: "Worker slots in use",
        description: "Turns running over the workers' concurrency.",
        unit: "percentunit",
        targets: [
          {
            expr: `sum(farm_worker_active_jobs{${S}}) / clamp_min(sum(farm_worker_concurrency{${S}}), 1)`,
            legend: "in use",
          },
        ],
      },
      {
        title: "Stalled jobs",
        description: "Turn jobs found stalled (a worker died or froze), per interval.",
        unit: "short",
        targets: [
          {
            expr: `sum(increase(farm_jobs_stalled_total{${S}}[$__rate_interval]))`,
            legend: "stalled",
          },
        ],
      },
      {
        title: "Admission rejections",
        description: "Submits refused before anything was stored, by reason.",
        unit: "ops",
        targets: [
          {
            expr: `sum by (reason) (${rate("farm_admission_rejections_total")})`,
            legend: "{{reason}}",
          },
        ],
      },
    ],
  },
  {
    uid: "farm-events",
    title: "wunder-farm / Storage and events",
    description:
      "Events persisted, the persist backlog and lag, hot streams, archiving, event streams.",
    panels: [
      {
        title: "Events persisted per second",
        description: "Events the persisters wrote to the durable store.",
        unit: "ops",
        targets: [{ expr: `sum(${rate("farm_events_persisted_total")})`, legend: "persisted" }],
      },
      {
        title: "Persist lag and backlog",
        description: "Age of the oldest event waiting to be stored, and how many wait.",
        unit: "s",
        targets: [{ expr: `max(farm_event_persist_lag_seconds{${S}})`, legend: "lag" }],
      },
      {
        title: "Hot stream length p95",
        description:
          "Entries in a session's hot Redis stream after each append; trimmed near events.hotStreamMaxLen, so a value at the cap means readers resume from the store.",
        unit: "short",
        targets: [{ expr: quantile(0.95, "farm_hot_stream_length_entries"), legend: "p95" }],
      },
      {
        title: "Buckets archived",
        description:
          "Event buckets past retention moved to archive files, by outcome (a failed one stays in the store and is retried).",
        unit: "short",
        targets: [
          {
            expr: `sum by (outcome) (increase(farm_archive_buckets_total{${S}}[$__range]))`,
            legend: "{{outcome}}",
          },
        ],
      },
      {
        title: "Since the last clean archive pass",
        description:
          "Time since the archiver last ended a pass with every due bucket archived; grows past ARCHIVE_INTERVAL_MS while passes fail (no data while the archiver is down; alert ArchiverStalled covers both).",
        unit: "s",
        type: "stat",
        targets: [
          {
            expr: `time() - max(farm_archive_last_success_timestamp_seconds{${S}} > 0)`,
            legend: "since",
          },
        ],
      },
      {
        title: "Event streams open",
        description: "SSE connections open now.",
        unit: "short",
        targets: [{ expr: `sum(farm_sse_connections{${S}})`, legend: "open" }],
      },
      {
        title: "Events sent per second",
        description: "Events written to event streams.",
        unit: "ops",
        targets: [{ expr: `sum(${rate("farm_sse_events_sent_total")})`, legend: "sent" }],
      },
    ],
  },
  {
    uid: "farm-node",
    title: "wunder-farm / Node processes",
    description: "CPU, memory, event loop lag and handles of every farm process.",
    panels: [
      {
        title: "CPU per process",
        description: "CPU seconds per second (1 = one core).",
        unit: "percentunit",
        targets: [
          {
            expr: rate("process_cpu_seconds_total"),
            legend: "{{job}} {{instance}}",
          },
        ],
      },
      {
        title: "Resident memory",
        description: "Resident set size per process.",
        unit: "bytes",
        targets: [{ expr: `process_resident_memory_bytes{${S}}`, legend: "{{job}} {{instance}}" }],
      },
      {
        title: "Event loop lag p99",
        description: "How late timers run: above 100 ms, the process is CPU-bound or blocked.",
        unit: "s",
        targets: [
          { expr: `nodejs_eventloop_lag_p99_seconds{${S}}`, legend: "{{job}} {{instance}}" },
        ],
      },
      {
        title: "Active handles",
        description: "libuv handles keeping each event loop alive (sockets, timers, …).",
        unit: "short",
        targets: [
          {
            expr: `sum by (job, instance) (nodejs_active_handles{${S}})`,
            legend: "{{job}} {{instance}}",
          },
        ],
      },
    ],
  },
];
