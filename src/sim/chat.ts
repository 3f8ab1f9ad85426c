/**
 * `POST /v1/chat/completions`: parse, maybe inject a fault, check the context window, run the
 * script and deliver the reply (as one JSON or as an SSE stream) at the configured pace.
 *
 * Invariants:
 * - order of checks: request validity (400), then faults (429, 500, hang, cut, context
 *   overflow), then the real context window (400), so a fault directive wins over everything but
 *   a broken request;
 * - faults come from a directive first, then the configured rates, then the runtime switch
 *   (fault-switch.ts) of the request's model, so the switch never hides a scripted fault;
 * - a hung request gets no bytes at all, not even headers; only the client's disconnect (or the
 *   server closing) ends it, and it holds no timer;
 * - a cut request gets the success headers, then its connection is destroyed before any body
 *   byte (a stream cut before the first token: clients see a network error);
 * - broken_tool_json breaks the arguments of the first tool call only (in text protocol the
 *   broken arguments are written into the call's block as a JSON string);
 * - the script sees one request shape whatever the tool protocol (request.ts reads a
 *   text-protocol request into it); only the rendering differs (render.ts writes a
 *   text-protocol request's tool calls as `<tool_call>` content);
 * - `model` in every reply echoes the request's model.
 */
import type { ServerResponse } from "node:http";
import type { FarmConfig } from "../config/schema.js";
import type { Logger } from "../obs/logger.js";
import { deliver } from "./deliver.js";
import { parseDirectives, summaryDirectives } from "./directives.js";
import {
  contextLengthExceeded,
  invalidRequest,
  rateLimited,
  sendError,
  serverError,
} from "./errors.js";
import { FaultSwitch } from "./fault-switch.js";
import { breakArguments, DEFAULT_RETRY_AFTER_S, FaultInjector } from "./faults.js";
import { completionJson, completionTokens, streamGroups } from "./render.js";
import { isRequestProblem, parseChatRequest } from "./request.js";
import { isCompactionRequest, locateTurn, planReply, type Reply } from "./script.js";
import { estimatePromptTokens } from "./tokens.js";

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
};
const JSON_HEADERS = { "content-type": "application/json" };

export type ChatHandler = (body: string, res: ServerResponse) => void;

export function createChatHandler(
  config: FarmConfig["sim"],
  logger?: Logger,
  faultSwitch: FaultSwitch = new FaultSwitch(config.seed),
): ChatHandler {
  const faults = new FaultInjector(config);
  // Unique per process run without a random source: start time plus a counter.
  const idPrefix = `chatcmpl-sim${Date.now().toString(36)}`;
  let served = 0;

  return (body, res) => {
    const request = parseChatRequest(body);
    if (isRequestProblem(request)) {
      sendError(res, invalidRequest(request.message, request.param));
      return;
    }
    const position = locateTurn(request.messages);
    const parsed = parseDirectives(position.lastUserContent);
    const userText = parsed.text;
    const directives = isCompactionRequest(position.lastUserContent)
      ? summaryDirectives(parsed.directives)
      : parsed.directives;
    const picked = faults.pick(directives, position);
    const switchedRetryAfterS = picked ? undefined : faultSwitch.pick429(request.model);
    const fault = picked ?? (switchedRetryAfterS === undefined ? undefined : "429");
    if (fault) logger?.debug("sim fault injected", { fault, round: position.round });
    if (fault === "hang") return;
    if (fault === "cut") {
      cut(res, request.stream ? SSE_HEADERS : JSON_HEADERS);
      return;
    }
    if (fault === "429") {
      const retryAfterS = switchedRetryAfterS ?? directives.retryAfterS ?? DEFAULT_RETRY_AFTER_S;
      sendError(res, rateLimited(retryAfterS));
      return;
    }
    if (fault === "500") {
      sendError(res, serverError());
      return;
    }
    const promptTokens = estimatePromptTokens(request);
    const windowTokens = config.contextWindowTokens;
    if (fault === "context_overflow" || promptTokens > windowTokens) {
      // A forced overflow still reports a prompt larger than the window, as a real one would.
      sendError(res, contextLengthExceeded(windowTokens, Math.max(promptTokens, windowTokens + 1)));
      return;
    }

    let reply: Reply = planReply({
      messages: request.messages,
      toolNames: request.toolNames,
      directives,
      userText,
      position,
    });
    if (fault === "broken_tool_json" && reply.kind === "tool_calls") {
      const [first, ...rest] = reply.calls;
      if (first) {
        reply = {
          ...reply,
          calls: [{ ...first, arguments: breakArguments(first.arguments) }, ...rest],
        };
      }
    }
    const completion = {
      id: `${idPrefix}${(served++).toString(36)}`,
      created: Math.floor(Date.now() / 1000),
      model: request.model,
      reply,
      toolProtocol: request.toolProtocol,
      promptTokens,
    };
    const ttftMs = directives.ttftMs ?? config.ttftMs;
    const tokenDelayMs = directives.tokenDelayMs ?? config.tokenDelayMs;
    if (request.stream) {
      deliver(
        res,
        SSE_HEADERS,
        streamGroups(completion, request.includeUsage),
        ttftMs,
        tokenDelayMs,
      );
    } else {
      // The whole answer is ready when its last token would have been streamed.
      const readyMs = ttftMs + tokenDelayMs * (completionTokens(completion) - 1);
      deliver(res, JSON_HEADERS, [completionJson(completion)], readyMs, 0);
    }
  };
}

/** Sends the headers of a success, then destroys the connection before any body byte. */
function cut(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, headers);
  res.flushHeaders();
  // On the next turn of the loop, so the headers leave before the socket goes.
  setImmediate(() => res.destroy());
}
