/**
 * The tools a turn may use: the subset of the registered tools it asked for, and their specs.
 *
 * Specs for a given selection are built once and reused: they go out with every model call.
 * Selections are kept in registration order without duplicates (`normalize`), so the cache
 * holds at most one entry per distinct set, and it is bounded besides.
 */
import type { ToolSpec } from "../llm/chat-stream.js";
import { toolSpecs } from "./builtin/index.js";
import type { Tool } from "./tool.js";

const MAX_CACHED_SELECTIONS = 256;

export class ToolCatalog {
  private readonly byName: ReadonlyMap<string, Tool>;
  private readonly selections = new Map<string, { tools: Map<string, Tool>; specs: ToolSpec[] }>();

  constructor(tools: readonly Tool[]) {
    this.byName = new Map(tools.map((tool) => [tool.name, tool]));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The registered tools among `names`, once each, in registration order (unknown ones dropped). */
  normalize(names: readonly string[]): string[] {
    const wanted = new Set(names);
    return this.names().filter((name) => wanted.has(name));
  }

  select(names: readonly string[]): ReadonlyMap<string, Tool> {
    return this.selection(names).tools;
  }

  specs(names: readonly string[]): ToolSpec[] {
    return this.selection(names).specs;
  }

  private selection(names: readonly string[]) {
    const key = names.join("\u0000");
    let selection = this.selections.get(key);
    if (!selection) {
      if (this.selections.size >= MAX_CACHED_SELECTIONS) this.selections.clear();
      const tools = new Map<string, Tool>();
      for (const name of names) {
        const tool = this.byName.get(name);
        if (tool) tools.set(name, tool);
      }
      selection = { tools, specs: toolSpecs([...tools.values()]) };
      this.selections.set(key, selection);
    }
    return selection;
  }
}
