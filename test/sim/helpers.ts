/**
 * Shared test scaffolding: a real simulator on a random loopback port, an official `openai`
 * client pointed at it, and raw-HTTP helpers for what the client hides (statuses, headers).
 */
import OpenAI from "openai";
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import { ConfigSchema, type FarmConfig } from "../../src/config/schema.js";
import { type SimServer, startSimServer } from "../../src/sim/server.js";

export function simConfig(overrides: Partial<FarmConfig["sim"]> = {}): FarmConfig["sim"] {
  return { ...ConfigSchema.parse({}).sim, ...overrides };
}

export function startSim(overrides: Partial<FarmConfig["sim"]> = {}): Promise<SimServer> {
  return startSimServer(simConfig(overrides), { port: 0, host: "127.0.0.1" });
}

export function client(sim: SimServer, options: { maxRetries?: number; timeout?: number } = {}) {
  return new OpenAI({ baseURL: sim.url, apiKey: "sim", maxRetries: 0, ...options });
}

export const TOOLS: ChatCompletionTool[] = [
  "list_files",
  "read_file",
  "execute_command",
  "echo",
].map((name) => ({
  type: "function",
  function: { name, description: `the ${name} tool`, parameters: { type: "object" } },
}));

export const user = (content: string): ChatCompletionMessageParam => ({ role: "user", content });

export async function postChat(sim: SimServer, body: unknown, init: RequestInit = {}) {
  return fetch(`${sim.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export async function errorBody(res: Response): Promise<ErrorBody> {
  return (await res.json()) as ErrorBody;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
