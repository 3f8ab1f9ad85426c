/**
 * Bull Board, BullMQ's web UI, on the farm's turn queue under `/admin/queues` (app.ts mounts it
 * behind the admin guard). Its page, static assets and JSON API all live under that path.
 *
 * Read-only on purpose: the jobs belong to the fair scheduler, which counts each user's
 * dispatched and running turns and each session's order, and to the reconciler, which gives a
 * turn whose job vanished its job back. A job changed behind their backs fights them: a removed
 * or cleaned job comes back (the turn is delayed, not stopped), a paused queue holds every turn
 * while the scheduler keeps counting them as dispatched, a promoted parked turn spends a model
 * budget that is not there, an added job names no turn. Operators stop turns through the API
 * (`POST /v1/turns/{id}/cancel`); the board is for looking. Bull Board enforces read-only mode
 * on its API (405 on any change), not only by hiding buttons.
 *
 * `@bull-board/api` is pinned to the exact version `@bull-board/express` depends on, so both share
 * one copy (and one set of adapter types).
 */
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Queue } from "bullmq";
import type { Router } from "express";

export const BULL_BOARD_PATH = "/admin/queues";

export function bullBoard(queue: Queue): Router {
  const server = new ExpressAdapter().setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(queue, { readOnlyMode: true })],
    serverAdapter: server,
    options: { uiConfig: { boardTitle: "wunder-farm turns" } },
  });
  return server.getRouter();
}
