/**
 * A loopback port nothing listens on right now, for a process a test or benchmark starts on a
 * port it must know in advance (a spawned role, a scrape target). Another process may take it
 * before it is used; on a test machine that is rare enough.
 */
import { type AddressInfo, createServer } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
