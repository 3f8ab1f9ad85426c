/**
 * The tool catalogue shared through Redis. Workers run the tools (they hold the MCP
 * connections); the API validates tool names at submit and answers `GET /v1/tools`. So each
 * worker publishes what it serves, and the API reads the board.
 *
 * Invariants:
 * - a worker's entry is rewritten on every change of its registry and every `PUBLISH_EVERY_MS`;
 *   entries older than `STALE_AFTER_MS` are ignored (and deleted) — that worker is gone;
 * - a tool is available when at least one live worker reports it available;
 * - built-in tools are known to every process without the board, so the API accepts them
 *   even before the first worker starts;
 * - the board holds no secrets: names, descriptions, schemas and health messages only.
 */
import type { Redis } from "ioredis";
import type { Logger } from "../obs/logger.js";
import type { RedisKeys } from "../redis/keys.js";
import type { CatalogEntry, SourceStatus, ToolRegistry } from "./registry.js";

const PUBLISH_EVERY_MS = 15_000;
const STALE_AFTER_MS = 60_000;
const READ_CACHE_MS = 1_000;

interface WorkerBoard {
  at: number;
  tools: CatalogEntry[];
  sources: SourceStatus[];
}

export interface ToolDirectoryView {
  tools: CatalogEntry[];
  sources: SourceStatus[];
  /** Live workers that published a catalogue. */
  workers: number;
}

/** A worker's side: keeps its entry on the board current until stopped. */
export class CatalogPublisher {
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly registry: ToolRegistry,
    private readonly workerId: string,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = this.registry.onChange(() => void this.publish());
    this.timer = setInterval(() => void this.publish(), PUBLISH_EVERY_MS);
    this.timer.unref();
    await this.publish();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.hdel(this.keys.toolCatalog, this.workerId).catch(() => undefined);
  }

  private async publish(): Promise<void> {
    const board: WorkerBoard = {
      at: Date.now(),
      tools: this.registry.catalog(),
      sources: this.registry.sourceStatuses(),
    };
    try {
      await this.redis.hset(this.keys.toolCatalog, this.workerId, JSON.stringify(board));
    } catch (err) {
      this.logger.warn("tool catalogue not published", { error: (err as Error).message });
    }
  }
}

/** The API's side: the merged catalogue of the built-ins and every live worker's tools. */
export class ToolDirectory {
  private cached: { at: number; view: Promise<ToolDirectoryView> } | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** The built-in tools every process knows. */
    private readonly local: ToolRegistry,
  ) {}

  view(): Promise<ToolDirectoryView> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at > READ_CACHE_MS) {
      const view = this.read(now);
      view.catch(() => {
        if (this.cached?.view === view) this.cached = null;
      });
      this.cached = { at: now, view };
    }
    return this.cached.view;
  }

  /** Client-written names (model or display names) → model names, and the unknown ones. */
  async normalize(requested: readonly string[]): Promise<{ names: string[]; unknown: string[] }> {
    const { tools } = await this.view();
    const byAnyName = new Map<string, string>();
    for (const tool of tools) {
      byAnyName.set(tool.name, tool.name);
      if (!byAnyName.has(tool.display_name)) byAnyName.set(tool.display_name, tool.name);
    }
    const wanted = new Set<string>();
    const unknown: string[] = [];
    for (const name of requested) {
      const found = byAnyName.get(name);
      if (found) wanted.add(found);
      else unknown.push(name);
    }
    return { names: tools.map((t) => t.name).filter((n) => wanted.has(n)), unknown };
  }

  private async read(now: number): Promise<ToolDirectoryView> {
    const raw = await this.redis.hgetall(this.keys.toolCatalog);
    const byName = new Map<string, CatalogEntry>();
    for (const tool of this.local.catalog()) byName.set(tool.name, tool);
    const sources = new Map<string, SourceStatus>();
    for (const s of this.local.sourceStatuses()) sources.set(s.id, s);
    let workers = 0;
    const stale: string[] = [];
    for (const [workerId, text] of Object.entries(raw)) {
      const board = parseBoard(text);
      if (!board || now - board.at > STALE_AFTER_MS) {
        stale.push(workerId);
        continue;
      }
      workers++;
      for (const tool of board.tools) {
        const known = byName.get(tool.name);
        if (!known || (!known.available && tool.available)) byName.set(tool.name, tool);
      }
      for (const s of board.sources) {
        const known = sources.get(s.id);
        if (!known || (!known.available && s.available)) sources.set(s.id, s);
      }
    }
    if (stale.length > 0) await this.redis.hdel(this.keys.toolCatalog, ...stale);
    return { tools: [...byName.values()], sources: [...sources.values()], workers };
  }
}

function parseBoard(text: string): WorkerBoard | null {
  try {
    const board = JSON.parse(text) as WorkerBoard;
    return typeof board.at === "number" && Array.isArray(board.tools) ? board : null;
  } catch {
    return null;
  }
}
