/**
 * Every tool the farm can run, from every source, under one name space: what a turn may use,
 * the specs the model is shown, and the catalogue operators and clients read.
 *
 * Invariants:
 * - a name belongs to one tool: sources come in registration order (built-ins first) and a
 *   later tool whose name is taken is left out (and logged), never shadows the first;
 * - tools of an unavailable source are withheld from prompts (`toolSet`) until it recovers, but
 *   stay in `catalog()` marked unavailable, and `lookup` still finds them so a call to one gets
 *   a clear "temporarily unavailable" result;
 * - a tool set is computed once per selection and reused (it goes out with every model call)
 *   until a source's tools or health change.
 */
import type { ToolView } from "../contract/tools.js";
import type { ToolSpec } from "../llm/chat-stream.js";
import type { Logger } from "../obs/logger.js";
import type { SourceHealth, ToolEntry, ToolSource } from "./source.js";

const MAX_CACHED_SELECTIONS = 256;

/** The tools one turn may call now, by model-visible name, and their specs. */
export interface ToolSet {
  readonly byName: ReadonlyMap<string, ToolEntry>;
  readonly specs: readonly ToolSpec[];
}

export type CatalogEntry = ToolView;

export interface SourceStatus extends SourceHealth {
  id: string;
  tools: number;
}

export class ToolRegistry {
  private readonly sources: ToolSource[] = [];
  private readonly unsubscribes: (() => void)[] = [];
  private readonly changeListeners = new Set<() => void>();
  private entries = new Map<string, ToolEntry>();
  private cache = new Map<string, ToolSet>();
  private healthTimer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(private readonly logger?: Logger) {}

  /** Adds a source; its tools take the names that are still free. Call `start` to connect it. */
  add(source: ToolSource): void {
    this.sources.push(source);
    this.unsubscribes.push(source.onChange(() => this.rebuild()));
    this.rebuild();
  }

  /** Starts every source (connects MCP servers) in parallel; never throws. */
  async start(): Promise<void> {
    await Promise.all(
      this.sources.map((s) =>
        s.start().catch((err: Error) => {
          this.logger?.warn("tool source failed to start", { source: s.id, error: err.message });
        }),
      ),
    );
    this.rebuild();
  }

  /** Probes every source every `intervalMs` (one round at a time). */
  startHealthChecks(intervalMs: number): void {
    if (this.healthTimer) return;
    this.healthTimer = setInterval(() => void this.checkHealth(), intervalMs);
    this.healthTimer.unref();
  }

  async checkHealth(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await Promise.all(this.sources.map((s) => s.checkHealth().catch(() => undefined)));
    } finally {
      this.checking = false;
    }
  }

  /** Lists every source's tools again now (an operator's explicit refresh). */
  async refresh(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.refresh().catch(() => undefined)));
    this.rebuild();
  }

  async close(): Promise<void> {
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = null;
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    await Promise.all(this.sources.map((s) => s.close().catch(() => undefined)));
  }

  /** Called after any change of tools or availability. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Model-visible names of every registered tool, available or not, in registration order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The tool called `name`, by model name or display name, available or not. */
  lookup(name: string): ToolEntry | undefined {
    return this.entries.get(name) ?? this.byDisplayName(name);
  }

  /** Why the tool's source cannot take calls now; null when it can. */
  unavailableReason(entry: ToolEntry): string | null {
    const health = this.sourceOf(entry)?.health();
    if (!health || health.available) return null;
    return `tool source ${entry.source} is unavailable${health.error ? `: ${health.error}` : ""}`;
  }

  /**
   * Names as a client wrote them (model or display names) → model names, in registration order
   * without duplicates, and the names that match no tool.
   */
  normalize(requested: readonly string[]): { names: string[]; unknown: string[] } {
    const wanted = new Set<string>();
    const unknown: string[] = [];
    for (const name of requested) {
      const entry = this.lookup(name);
      if (entry) wanted.add(entry.name);
      else unknown.push(name);
    }
    return { names: this.names().filter((n) => wanted.has(n)), unknown };
  }

  /** The available tools among `names` (all available tools when null). */
  toolSet(names: readonly string[] | null): ToolSet {
    const key = names === null ? "\u0001all" : names.join("\u0000");
    let set = this.cache.get(key);
    if (!set) {
      if (this.cache.size >= MAX_CACHED_SELECTIONS) this.cache.clear();
      const byName = new Map<string, ToolEntry>();
      for (const name of names ?? this.names()) {
        const entry = this.entries.get(name);
        if (entry && this.unavailableReason(entry) === null) byName.set(name, entry);
      }
      set = { byName, specs: [...byName.values()].map(specOf) };
      this.cache.set(key, set);
    }
    return set;
  }

  catalog(): CatalogEntry[] {
    return [...this.entries.values()].map((entry) => {
      const reason = this.unavailableReason(entry);
      return {
        name: entry.name,
        display_name: entry.displayName,
        description: entry.description,
        version: entry.version,
        kind: entry.kind,
        source: entry.source,
        idempotent: entry.idempotent,
        parallel_safe: entry.parallelSafe,
        input_schema: entry.inputSchema,
        available: reason === null,
        ...(reason === null ? {} : { unavailable_reason: reason }),
      };
    });
  }

  sourceStatuses(): SourceStatus[] {
    return this.sources.map((s) => ({ id: s.id, tools: s.tools().length, ...s.health() }));
  }

  private rebuild(): void {
    const entries = new Map<string, ToolEntry>();
    for (const source of this.sources) {
      for (const entry of source.tools()) {
        const taken = entries.get(entry.name);
        if (taken) {
          this.logger?.warn("tool left out: its name is taken", {
            tool: entry.name,
            source: source.id,
            taken_by: taken.source,
          });
          continue;
        }
        entries.set(entry.name, entry);
      }
    }
    this.entries = entries;
    this.cache = new Map();
    for (const listener of this.changeListeners) listener();
  }

  private sourceOf(entry: ToolEntry): ToolSource | undefined {
    return this.sources.find((s) => s.id === entry.source);
  }

  private byDisplayName(name: string): ToolEntry | undefined {
    for (const entry of this.entries.values()) if (entry.displayName === name) return entry;
    return undefined;
  }
}

const specCache = new WeakMap<ToolEntry, ToolSpec>();

function specOf(entry: ToolEntry): ToolSpec {
  let spec = specCache.get(entry);
  if (!spec) {
    spec = {
      type: "function",
      function: {
        name: entry.name,
        description: entry.description,
        parameters: entry.inputSchema,
      },
    };
    specCache.set(entry, spec);
  }
  return spec;
}
