/**
 * The turn's side of tool calls: why a name the model called is not in the turn's tool set, and
 * where a result too long for the model is kept (an artifact of the turn's session).
 */
import type { Logger } from "../obs/logger.js";
import type { Store, TurnRecord } from "../store/port.js";
import type { ArtifactRef } from "../tools/orchestrator/tool-result.js";
import type { ToolRegistry, ToolSet } from "../tools/registry.js";

const LISTED_TOOLS_MAX = 40;

/** `invalid` when the model named something it was never offered (its mistake to correct). */
export function explainMissingTool(
  registry: ToolRegistry,
  toolSet: ToolSet,
  name: string,
): { error: string; invalid: boolean } {
  const entry = registry.lookup(name);
  const unavailable = entry ? registry.unavailableReason(entry) : null;
  if (entry && unavailable) {
    return { error: `${name} is temporarily unavailable: ${unavailable}`, invalid: false };
  }
  const offered = [...toolSet.byName.keys()];
  const listed =
    offered.length === 0
      ? "none"
      : offered.slice(0, LISTED_TOOLS_MAX).join(", ") +
        (offered.length > LISTED_TOOLS_MAX ? ", …" : "");
  const why = entry ? `this turn may not use ${name}` : `unknown tool "${name}"`;
  return { error: `${why}; this turn can use: ${listed}`, invalid: true };
}

export async function saveToolArtifact(
  store: Store,
  turn: TurnRecord,
  output: { id: string; tool: string; content: string },
  log: Logger,
): Promise<ArtifactRef | null> {
  try {
    const saved = await store.putArtifact(
      {
        id: output.id,
        sessionId: turn.sessionId,
        turnId: turn.id,
        userId: turn.userId,
        kind: "tool_output",
        name: `${output.tool}.json`,
        contentType: "application/json",
        createdAt: Date.now(),
      },
      Buffer.from(output.content, "utf8"),
    );
    return { id: saved.id, size_bytes: saved.sizeBytes, sha256: saved.sha256 };
  } catch (err) {
    // The model still gets the cut view; only the full copy is missing.
    log.warn("tool output artifact not saved", {
      tool: output.tool,
      error: (err as Error).message,
    });
    return null;
  }
}
