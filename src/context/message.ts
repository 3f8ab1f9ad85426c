/**
 * One item of a session's model-visible history, in the OpenAI chat shape the LLM client sends.
 * The store keeps these per session in order; a turn appends its items when it ends.
 *
 * Stored items are parsed with this schema, so every field added later must stay optional.
 */
import { z } from "zod";

export const ToolCallSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** Raw JSON text exactly as the model produced it (it may be invalid). */
  arguments: z.string(),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

export const ContextMessageSchema = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content: z.string() }),
  z.object({
    role: z.literal("user"),
    content: z.string(),
    /**
     * Set on a compaction summary (a user-role message, as in Codex) so a later compaction can
     * tell it from what the user wrote. Local only: it is not sent to the model.
     */
    summary: z.literal(true).optional(),
  }),
  z.object({
    role: z.literal("assistant"),
    content: z.string(),
    tool_calls: z.array(ToolCallSchema).optional(),
  }),
  z.object({ role: z.literal("tool"), tool_call_id: z.string(), content: z.string() }),
]);
export type ContextMessage = z.infer<typeof ContextMessageSchema>;
