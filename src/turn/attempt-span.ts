/**
 * One attempt of a turn as an `invoke_agent` span (see src/obs/genai-spans.ts): the span ends with
 * what the attempt came to. Parking and hand-back reach BullMQ as errors (DelayedError,
 * WaitingError), yet they are not failures: they leave the turn to a later attempt, and the span
 * says so instead of marking an error.
 */
import type { Tracer } from "@opentelemetry/api";
import { DelayedError, WaitingError } from "bullmq";
import { AgentSpan } from "../obs/genai-spans.js";
import type { TurnRecord } from "../store/port.js";

export async function inAttemptSpan<T extends string>(
  tracer: Tracer,
  turn: TurnRecord,
  run: (agent: AgentSpan) => Promise<T>,
): Promise<T> {
  const agent = AgentSpan.start(tracer, turn);
  try {
    const outcome = await run(agent);
    agent.end(outcome);
    return outcome;
  } catch (err) {
    if (err instanceof DelayedError) agent.end("parked");
    else if (err instanceof WaitingError) agent.end("handed_back");
    else agent.end("error", err);
    throw err;
  }
}
