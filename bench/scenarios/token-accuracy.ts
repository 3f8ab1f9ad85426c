/**
 * `token-accuracy`: how close the farm's prompt token estimate (src/context/token-count.ts,
 * `o200k_base` + OpenAI-style framing) comes to what a provider reports, before and after
 * calibration (src/context/token-calibration.ts), and how fast it counts.
 *
 * The "provider" is the real simulator over HTTP (it counts with `cl100k_base` and its own
 * framing, like a provider whose tokenizer we do not know exactly). N seeded, realistic agent
 * sessions of different sizes — English or Chinese speaking users, prose, TypeScript code, JSON
 * tool results, logs, parallel tool calls, a system prompt and tool specs — are each sent once,
 * non-streaming, and `usage.prompt_tokens` is read back.
 *
 * Figures: mean absolute percentage error (MAPE) of the raw estimate over all prompts; then two
 * calibrations are fed the first half (in order) and frozen, and MAPE is measured on the second
 * half: the scalar one (plain numbers: one ratio per model) and the mix-aware one (`TokenCount`s:
 * the ratio also follows the prompt's non-Latin share) — the target (< 2%) is on the latter;
 * per session kind (en/zh × small/medium/large), worst errors; and counting speed: a fresh count
 * (tokenizer) and a cached re-count of 2,000 messages of ~500 chars, and the tokenizer's
 * throughput over all prompts.
 */

import { ConfigSchema } from "../../src/config/schema.js";
import type { ContextMessage } from "../../src/context/message.js";
import { TokenCalibration } from "../../src/context/token-calibration.js";
import { countPrompt, countPromptTokens, type TokenCount } from "../../src/context/token-count.js";
import type { ToolSpec } from "../../src/llm/chat-stream.js";
import { seededRandom } from "../../src/sim/hash.js";
import { startSimServer } from "../../src/sim/server.js";
import { mean, median, percentile, round } from "../stats.js";

export interface TokenAccuracyOptions {
  /** Prompts to send (at least 4); half calibrate, half are measured. */
  prompts: number;
  /** Seed of the generated sessions. */
  seed?: number;
}

export interface TokenAccuracyFigures {
  prompts: number;
  prompt_tokens_median: number;
  prompt_tokens_max: number;
  mape_raw_pct: number;
  mape_raw_measured_half_pct: number;
  /** One ratio per model (plain-number calibration). */
  mape_scalar_calibrated_pct: number;
  mape_scalar_calibrated_by_kind_pct: Record<string, number>;
  scalar_ratio: number;
  /** Mix-aware calibration (TokenCounts): the target figure. */
  mape_calibrated_pct: number;
  max_error_calibrated_pct: number;
  p95_error_calibrated_pct: number;
  calibration_ratio_latin: number;
  calibration_ratio_at_share_0_3: number;
  mape_calibrated_by_kind_pct: Record<string, number>;
  count_2000_messages_fresh_ms: number;
  count_2000_messages_cached_ms: number;
  tokenizer_mb_per_s: number;
  target_mape_calibrated_pct: number;
  target_met: boolean;
}

const MODEL = "bench-token-accuracy";
const TARGET_MAPE_PCT = 2;

// ---------------------------------------------------------------------------------------------
// Text banks

const PROSE = [
  "The build failed because the test runner could not find the fixture directory.",
  "I looked at the configuration and the path is relative to the repository root, not the package.",
  "After the change, every request goes through the circuit breaker before it takes a slot.",
  "This keeps the worker responsive even when the upstream model is slow or rate limited.",
  "Note that the retry budget is shared across all sessions of the same user.",
  "We should also make sure the cache is invalidated when the schema version changes.",
  "The function returns early when the input is empty, so the caller never sees a null.",
  "I replaced the nested loops with a map lookup; the complexity drops from quadratic to linear.",
  "Let me check whether the migration has already been applied on the staging database.",
  "The error message suggests a permissions problem rather than a missing file.",
  "Here is a summary of what changed, why it changed, and what remains to be done.",
  "Performance improved by roughly 35% on the large fixture, with no change on the small one.",
  "If you prefer, I can split this into two commits: one for the refactor and one for the fix.",
  "The stack trace points at line 142 of src/store/sqlite.ts, inside the transaction callback.",
  "I could not reproduce the flaky test locally after 50 runs; it may depend on timing in CI.",
  "Both approaches work, but the second one avoids an extra round trip to Redis per event.",
  "Please confirm the expected behaviour when the session is cancelled mid-stream.",
  "Finally, I updated the documentation and added a regression test for the edge case.",
];

const CHINESE = [
  "构建失败是因为测试运行器找不到固定装置目录。",
  "我检查了配置文件，发现路径是相对于仓库根目录的，而不是相对于包目录。",
  "修改之后，每个请求在获取槽位之前都会先经过熔断器。",
  "这样即使上游模型响应缓慢或者被限流，工作进程也能保持响应。",
  "请注意，重试预算是在同一用户的所有会话之间共享的。",
  "当数据库结构版本发生变化时，我们还应该确保缓存失效。",
  "我用哈希表查找替换了嵌套循环，复杂度从平方级降到了线性。",
  "让我先确认一下迁移脚本是否已经在预发布环境的数据库上执行过。",
  "错误信息表明这是权限问题，而不是文件缺失。",
  "下面是本次修改的内容摘要、修改原因以及剩余的工作。",
  "在大型测试数据上性能提升了大约百分之三十五，小型数据上没有变化。",
  "如果你愿意，我可以把它拆成两个提交：一个用于重构，一个用于修复。",
  "请确认会话在流式输出过程中被取消时的预期行为。",
  "最后，我更新了文档，并为这个边界情况添加了回归测试。",
  "上下文压缩会在每次调用模型之前检查令牌预算。",
  "工具调用的结果必须紧跟在发起调用的助手消息之后。",
];

const IDENTIFIERS = [
  "session",
  "turnId",
  "modelGate",
  "eventStore",
  "retryDelay",
  "contextBudget",
  "toolResult",
  "userSlots",
  "breaker",
  "snapshot",
  "pending",
  "deadline",
];

const COMMANDS = [
  "npm test",
  "npx tsc --noEmit -p .",
  "ls -la src/turn",
  "git diff --stat",
  "cat package.json",
];

const SYSTEM_PROMPT = [
  "You are a coding agent working in a sandboxed workspace.",
  "Use the tools to read files and run commands; never guess file contents.",
  "Answer in the user's language. Keep answers short and cite the files you changed.",
  "When a tool fails, read its error and try a different approach before giving up.",
].join("\n");

const TOOLS: ToolSpec[] = [
  {
    type: "function",
    function: {
      name: "read_file",
      description: "Read a UTF-8 text file of the workspace, optionally a line range.",
      parameters: {
        type: "object",
        properties: {
          path: { type: "string", description: "Path relative to the workspace root" },
          start_line: { type: "integer", minimum: 1 },
          end_line: { type: "integer", minimum: 1 },
        },
        required: ["path"],
      },
    },
  },
  {
    type: "function",
    function: {
      name: "execute_command",
      description: "Run a shell command in the workspace and return its exit code and output.",
      parameters: {
        type: "object",
        properties: {
          command: { type: "string" },
          timeout_s: { type: "number", description: "Seconds before the command is killed" },
        },
        required: ["command"],
      },
    },
  },
  {
    type: "function",
    function: {
      name: "list_files",
      description: "List the files under a directory, recursively up to a depth.",
      parameters: {
        type: "object",
        properties: { path: { type: "string" }, depth: { type: "integer", maximum: 5 } },
      },
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Session generator

type Random = () => number;

const pick = <T>(random: Random, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)] as T;
const int = (random: Random, min: number, max: number) =>
  min + Math.floor(random() * (max - min + 1));

function prose(random: Random, chars: number, chinese: boolean): string {
  const bank = chinese ? CHINESE : PROSE;
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    const sentence = pick(random, bank);
    parts.push(sentence);
    length += sentence.length + 1;
    if (random() < 0.15) parts.push(chinese ? "\n\n" : "\n\n");
  }
  return parts.join(chinese ? "" : " ").replace(/ \n\n /g, "\n\n");
}

function code(random: Random, lines: number): string {
  const out: string[] = [
    `import { ${pick(random, IDENTIFIERS)} } from "./${pick(random, IDENTIFIERS)}.js";`,
    "",
  ];
  while (out.length < lines) {
    const name = `${pick(random, IDENTIFIERS)}${int(random, 1, 99)}`;
    const arg = pick(random, IDENTIFIERS);
    out.push(
      `export async function ${name}(${arg}: string, limit = ${int(random, 1, 5000)}): Promise<number> {`,
      `  const started = Date.now(); // ${pick(random, PROSE).slice(0, 40)}`,
      `  if (!${arg} || ${arg}.length > limit) throw new Error(\`bad ${arg}: \${${arg}}\`);`,
      `  for (let i = 0; i < ${int(random, 2, 64)}; i++) await ${pick(random, IDENTIFIERS)}.get(\`k:\${i}\`);`,
      `  return Date.now() - started;`,
      "}",
      "",
    );
  }
  return out.join("\n");
}

function jsonResult(random: Random, entries: number, chinese: boolean): string {
  const files = Array.from({ length: entries }, (_, i) => ({
    path: `src/${pick(random, IDENTIFIERS)}/${pick(random, IDENTIFIERS)}-${i}.ts`,
    size: int(random, 120, 90_000),
    modified: `2025-0${int(random, 1, 9)}-${int(random, 10, 28)}T${int(random, 10, 23)}:${int(random, 10, 59)}:00Z`,
    note: random() < 0.3 ? (chinese ? pick(random, CHINESE) : pick(random, PROSE)) : null,
  }));
  return JSON.stringify({ ok: true, data: { files, truncated: false }, error: null });
}

function logOutput(random: Random, lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const level = pick(random, ["INFO", "WARN", "ERROR", "DEBUG"]);
    out.push(
      `2025-06-0${int(random, 1, 9)} 12:${int(random, 10, 59)}:${int(random, 10, 59)}.${int(random, 100, 999)} ${level} [${pick(random, IDENTIFIERS)}] ${pick(random, PROSE)} (${int(random, 1, 9999)} ms)`,
    );
  }
  const exit = random() < 0.7 ? 0 : 1;
  return JSON.stringify({
    ok: exit === 0,
    data: { exit_code: exit, output: out.join("\n") },
    error: null,
  });
}

function toolCall(random: Random, id: string, chinese: boolean) {
  const name = pick(random, ["read_file", "execute_command", "list_files"] as const);
  const args =
    name === "read_file"
      ? { path: `src/${pick(random, IDENTIFIERS)}/${pick(random, IDENTIFIERS)}.ts` }
      : name === "execute_command"
        ? { command: pick(random, COMMANDS) }
        : { path: "src", depth: int(random, 1, 4) };
  const scale = random() < 0.1 ? 8 : 1; // now and then a big output
  const content =
    name === "read_file"
      ? code(random, int(random, 10, 80) * scale)
      : name === "execute_command"
        ? logOutput(random, int(random, 3, 30) * scale)
        : jsonResult(random, int(random, 3, 25) * scale, chinese);
  return { call: { id, name, arguments: JSON.stringify(args) }, content };
}

/** One session: system prompt, then `exchanges` user requests with tool rounds and answers. */
function session(random: Random, index: number): { messages: ContextMessage[]; kind: string } {
  const chinese = random() < 0.35;
  const size = pick(random, ["small", "medium", "large"] as const);
  const exchanges =
    size === "small"
      ? int(random, 1, 2)
      : size === "medium"
        ? int(random, 3, 10)
        : int(random, 12, 30);
  const messages: ContextMessage[] = [{ role: "system", content: SYSTEM_PROMPT }];
  let calls = 0;
  for (let e = 0; e < exchanges; e++) {
    messages.push({ role: "user", content: prose(random, int(random, 40, 600), chinese) });
    const rounds = int(random, 0, 3);
    for (let r = 0; r < rounds; r++) {
      const made = Array.from({ length: int(random, 1, 3) }, () =>
        toolCall(random, `call_${index}_${calls++}`, chinese),
      );
      messages.push({
        role: "assistant",
        content: random() < 0.4 ? prose(random, int(random, 20, 200), chinese) : "",
        tool_calls: made.map((m) => m.call),
      });
      for (const m of made)
        messages.push({ role: "tool", tool_call_id: m.call.id, content: m.content });
    }
    messages.push({ role: "assistant", content: prose(random, int(random, 80, 1500), chinese) });
  }
  // The request ends with the user's newest message, as a turn's first model call does.
  messages.push({ role: "user", content: prose(random, int(random, 40, 400), chinese) });
  return { messages, kind: `${chinese ? "zh" : "en"}-${size}` };
}

function wire(m: ContextMessage): Record<string, unknown> {
  if (m.role === "assistant" && m.tool_calls?.length) {
    return {
      role: "assistant",
      content: m.content,
      tool_calls: m.tool_calls.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.arguments },
      })),
    };
  }
  if (m.role === "user") return { role: "user", content: m.content };
  return m;
}

async function providerPromptTokens(url: string, messages: ContextMessage[]): Promise<number> {
  const res = await fetch(`${url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: messages.map(wire), tools: TOOLS }),
  });
  const body = (await res.json()) as { usage?: { prompt_tokens?: number }; error?: unknown };
  const tokens = body.usage?.prompt_tokens;
  if (res.status !== 200 || typeof tokens !== "number") {
    throw new Error(`sim answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  return tokens;
}

const pctError = (estimate: number, actual: number) => (Math.abs(estimate - actual) / actual) * 100;

/** Fresh objects, so the per-message cache cannot answer. */
const cloneAll = (messages: readonly ContextMessage[]) => messages.map((m) => ({ ...m }));

function countingSpeed(random: Random) {
  const history: ContextMessage[] = [];
  for (let i = 0; i < 2000; i++) {
    const roll = random();
    const content =
      roll < 0.4
        ? prose(random, 500, false)
        : roll < 0.6
          ? prose(random, 500, true)
          : code(random, 14).slice(0, 500);
    history.push({ role: i % 2 === 0 ? "user" : "assistant", content });
  }
  countPromptTokens(cloneAll(history), TOOLS); // warm-up (JIT, merge cache)
  const fresh: number[] = [];
  const cached: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const copy = cloneAll(history);
    let t0 = performance.now();
    countPromptTokens(copy, TOOLS);
    fresh.push(performance.now() - t0);
    t0 = performance.now();
    countPromptTokens(copy, TOOLS);
    cached.push(performance.now() - t0);
  }
  return { freshMs: median(fresh), cachedMs: median(cached) };
}

export async function tokenAccuracy(
  options: TokenAccuracyOptions,
  log: (line: string) => void,
): Promise<TokenAccuracyFigures> {
  const n = Math.max(4, Math.floor(options.prompts));
  const random = seededRandom(options.seed ?? 7);
  const sessions = Array.from({ length: n }, (_, i) => session(random, i));
  const sim = await startSimServer(
    { ...ConfigSchema.parse({}).sim, contextWindowTokens: 10_000_000, ttftMs: 0, tokenDelayMs: 0 },
    { port: 0, host: "127.0.0.1" },
  );
  const rows: { kind: string; estimate: number; count: TokenCount; actual: number }[] = [];
  let countMs = 0;
  let countedChars = 0;
  try {
    for (const s of sessions) {
      const fresh = cloneAll(s.messages);
      const t0 = performance.now();
      const count = countPrompt(fresh, TOOLS);
      countMs += performance.now() - t0;
      const estimate = count.tokens;
      countedChars += fresh.reduce((sum, m) => sum + m.content.length, 0);
      rows.push({
        kind: s.kind,
        estimate,
        count,
        actual: await providerPromptTokens(sim.url, s.messages),
      });
    }
  } finally {
    await sim.close();
  }

  const half = Math.floor(n / 2);
  // Scalar: plain numbers, one ratio per model. Mix-aware: TokenCounts (non-Latin share).
  const scalar = new TokenCalibration();
  const calibration = new TokenCalibration();
  for (const row of rows.slice(0, half)) {
    scalar.observe(MODEL, row.actual, row.estimate);
    calibration.observe(MODEL, row.actual, row.count);
  }
  const measured = rows.slice(half);
  const scalarErrors = measured.map((r) => pctError(scalar.estimate(MODEL, r.estimate), r.actual));
  const calibratedErrors = measured.map((r) =>
    pctError(calibration.estimate(MODEL, r.count), r.actual),
  );
  const byKind = (errors: number[]) => {
    const groups: Record<string, number[]> = {};
    measured.forEach((r, i) => {
      const group = groups[r.kind] ?? [];
      group.push(errors[i] as number);
      groups[r.kind] = group;
    });
    return Object.fromEntries(
      Object.entries(groups)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([kind, group]) => [`${kind} (${group.length})`, round(mean(group), 2)]),
    );
  };
  const speed = countingSpeed(seededRandom((options.seed ?? 7) + 1));
  const actuals = rows.map((r) => r.actual);
  const mapeCalibrated = mean(calibratedErrors);
  const figures: TokenAccuracyFigures = {
    prompts: n,
    prompt_tokens_median: median(actuals),
    prompt_tokens_max: Math.max(...actuals),
    mape_raw_pct: round(mean(rows.map((r) => pctError(r.estimate, r.actual))), 2),
    mape_raw_measured_half_pct: round(mean(measured.map((r) => pctError(r.estimate, r.actual))), 2),
    mape_scalar_calibrated_pct: round(mean(scalarErrors), 2),
    mape_scalar_calibrated_by_kind_pct: byKind(scalarErrors),
    scalar_ratio: round(scalar.ratio(MODEL), 4),
    mape_calibrated_pct: round(mapeCalibrated, 2),
    max_error_calibrated_pct: round(Math.max(...calibratedErrors), 2),
    p95_error_calibrated_pct: round(percentile(calibratedErrors, 95), 2),
    calibration_ratio_latin: round(calibration.ratio(MODEL, 0), 4),
    calibration_ratio_at_share_0_3: round(calibration.ratio(MODEL, 0.3), 4),
    mape_calibrated_by_kind_pct: byKind(calibratedErrors),
    count_2000_messages_fresh_ms: round(speed.freshMs, 1),
    count_2000_messages_cached_ms: round(speed.cachedMs, 2),
    tokenizer_mb_per_s: round(countedChars / 1e6 / (countMs / 1000), 2),
    target_mape_calibrated_pct: TARGET_MAPE_PCT,
    target_met: mapeCalibrated < TARGET_MAPE_PCT,
  };
  log(`token-accuracy: ${JSON.stringify(figures)}`);
  return figures;
}
