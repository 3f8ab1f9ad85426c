/**
 * The sample prompts of the `token-accuracy` bench (bench/scenarios/token-accuracy.ts): seeded,
 * realistic agent sessions of different sizes — English or Chinese speaking users, prose,
 * TypeScript code, JSON tool results, logs, parallel tool calls, a system prompt and tool specs
 * — and the 2,000-message history its counting-speed figure uses.
 *
 * Invariants: deterministic — the same seed gives the same sessions and history (only
 * src/sim/hash.ts's seededRandom is drawn from, in a fixed order); every session starts with
 * the system prompt and ends with a user message; each tool result directly follows the
 * assistant message that made its call.
 */

import type { ContextMessage } from "../src/context/message.js";
import type { ToolSpec } from "../src/llm/chat-stream.js";
import { seededRandom } from "../src/sim/hash.js";

/** One generated session and its kind (`en|zh`-`small|medium|large`). */
export interface SampleSession {
  messages: ContextMessage[];
  kind: string;
}

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

/** The tool specs sent with every prompt. */
export const TOOLS: ToolSpec[] = [
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
function session(random: Random, index: number): SampleSession {
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

/** `count` sessions generated from `seed` (the sessions measured by the scenario). */
export function sampleSessions(count: number, seed: number): SampleSession[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => session(random, i));
}

/** 2,000 alternating user/assistant messages of ~500 chars (English, Chinese or code). */
export function countingHistory(seed: number): ContextMessage[] {
  const random = seededRandom(seed);
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
  return history;
}
