/**
 * `final_response`: the model's way to hand over its answer and end the round.
 *
 * Invariant: it has no effect of its own; the answer comes back unchanged as `data.answer`, and
 * being `terminal` is what makes the orchestrator end the round after it (and run it after every
 * other call of the same step).
 */
import { z } from "zod";
import type { Tool } from "../tool.js";

const FinalResponseInput = z.object({
  content: z.string().describe("The final answer to the user, complete and self-contained."),
});
type FinalResponseArgs = z.infer<typeof FinalResponseInput>;

export const finalResponseTool: Tool<FinalResponseArgs> = {
  name: "final_response",
  description:
    "Give the user your final answer and end this round. Call it once the task is done (or " +
    "cannot be done), with the whole answer in content; nothing runs after it.",
  version: "1",
  kind: "terminal",
  family: "control",
  policy: { idempotent: true },
  input: FinalResponseInput,
  async run(args) {
    return { ok: true, data: { answer: args.content } };
  },
};
