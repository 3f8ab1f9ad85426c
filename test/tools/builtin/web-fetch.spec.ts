/**
 * web_fetch against real HTTP servers on 127.0.0.1 (and 127.0.0.2, also loopback on Linux).
 * No test sends traffic anywhere else: every other address in here must be refused before any
 * connection is attempted.
 */
import { getEventListeners } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gzipSync } from "node:zlib";
import { expect } from "chai";
import { classifyAddress, nonPublicReason } from "../../../src/tools/builtin/address-guard.js";
import {
  type AddressPolicy,
  createWebFetchTool,
  type WebFetchResult,
  webFetchTool,
} from "../../../src/tools/builtin/web-fetch.js";
import type { Tool, ToolContext, ToolLimits } from "../../../src/tools/tool.js";
import { contextFor, runTool } from "./helpers.js";

/** A local server with canned routes, counting the connections it accepted. */
class TestServer {
  connections = 0;
  requests: string[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly routes: Record<string, http.RequestListener>) {
    this.server = http.createServer((req, res) => {
      this.requests.push(req.url ?? "");
      const route = this.routes[(req.url ?? "").split("?")[0] ?? ""];
      if (route) route(req, res);
      else res.writeHead(404, { "content-type": "text/plain" }).end("no such page");
    });
    this.server.on("connection", (socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  async listen(host: string): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(route: string): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address}:${port}${route}`;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const text =
  (body: string | Buffer, type = "text/plain; charset=utf-8", status = 200): http.RequestListener =>
  (_req, res) =>
    res.writeHead(status, { "content-type": type }).end(body);

const redirect =
  (location: string, status = 302): http.RequestListener =>
  (_req, res) =>
    res.writeHead(status, { location }).end();

describe("tools/web_fetch", function () {
  this.timeout(20_000);
  let server: TestServer;
  let other: TestServer;

  before(async () => {
    other = await new TestServer({ "/": text("private data") }).listen("127.0.0.2");
    server = await new TestServer({
      "/hello": text("héllo wörld"),
      "/json": text('{"a":1}', "application/json"),
      "/r3": redirect("/r2", 301),
      "/r2": redirect("r1", 307),
      "/r1": redirect("/hello", 303),
      "/loop": redirect("/loop"),
      "/big": text("a".repeat(100_000)),
      "/accents": text("é".repeat(1000)),
      "/png": text(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0]), "image/png"),
      "/untyped-binary": (_req, res) => res.end(Buffer.from([1, 2, 0, 3])),
      "/gzip": (_req, res) =>
        res
          .writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" })
          .end(gzipSync("unzipped!")),
      "/unavailable": text("try later", "text/plain", 503),
      "/busy": text("slow down", "text/plain", 429),
      "/slow": (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("partial");
        // Never ends: the test's deadline or abort must cut it.
      },
      "/to-file": redirect("file:///etc/passwd"),
      "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
      "/to-ipv6-loopback": redirect("http://[::1]/"),
      "/to-other": redirect(`http://127.0.0.2:${other.port}/`),
    }).listen("127.0.0.1");
  });
  after(async () => {
    await server.close();
    await other.close();
  });
  beforeEach(() => {
    server.connections = 0;
    server.requests = [];
    other.connections = 0;
  });

  const ctxWith = (limits: Partial<ToolLimits> = {}, signal?: AbortSignal): ToolContext =>
    contextFor("/nonexistent-workspace", { limits, ...(signal ? { signal } : {}) });
  const allowPrivate = (limits: Partial<ToolLimits> = {}) =>
    ctxWith({ webFetchAllowPrivate: true, ...limits });
  const fetchWith = (tool: Tool, args: unknown, ctx: ToolContext) => runTool(tool, args, ctx);
  const get = (args: unknown, ctx = allowPrivate()) => fetchWith(webFetchTool, args, ctx);
  const dataOf = (out: { data: unknown }) => out.data as WebFetchResult;

  describe("with private addresses allowed (local test server)", () => {
    it("fetches a text page", async () => {
      const url = server.url("/hello");
      const out = await get({ url });
      expect(out).to.deep.equal({
        ok: true,
        data: {
          url,
          final_url: url,
          status: 200,
          content_type: "text/plain; charset=utf-8",
          body: "héllo wörld",
          truncated: false,
          bytes: Buffer.byteLength("héllo wörld"),
        },
        truncated: false,
      });
      expect((await get({ url: server.url("/json") })).data).to.include({ body: '{"a":1}' });
    });

    it("follows redirects (relative locations, 301/303/307) and reports the final URL", async () => {
      const out = await get({ url: server.url("/r3") });
      expect(out.ok, out.error).to.equal(true);
      expect(dataOf(out)).to.include({
        url: server.url("/r3"),
        final_url: server.url("/hello"),
        body: "héllo wörld",
      });
      expect(server.requests).to.deep.equal(["/r3", "/r2", "/r1", "/hello"]);
    });

    it("gives up after 5 redirects", async () => {
      const out = await get({ url: server.url("/loop") });
      expect(out).to.deep.equal({
        ok: false,
        error: "too many redirects (more than 5)",
        data: null,
      });
      expect(server.requests).to.have.length(6);
    });

    it("stops reading at max_bytes, clamped to the limit, without splitting a character", async () => {
      const capped = await get({ url: server.url("/big"), max_bytes: 1000 });
      expect(capped.ok).to.equal(true);
      expect(capped.truncated).to.equal(true);
      expect(dataOf(capped)).to.include({ truncated: true, bytes: 1000, body: "a".repeat(1000) });

      const clamped = await get(
        { url: server.url("/big"), max_bytes: 1e9 },
        allowPrivate({ webFetchMaxBytes: 500 }),
      );
      expect(dataOf(clamped)).to.include({ bytes: 500, truncated: true });

      const accents = await get({ url: server.url("/accents"), max_bytes: 11 });
      expect(dataOf(accents).body).to.equal("é".repeat(5));
    });

    it("does not dump binary content", async () => {
      const png = await get({ url: server.url("/png") });
      expect(png.ok).to.equal(true);
      expect(dataOf(png)).to.include({
        content_type: "image/png",
        body: "(not shown: image/png is not a text content type)",
        bytes: 0,
      });
      expect(dataOf(await get({ url: server.url("/untyped-binary") })).body).to.equal(
        "(not shown: the body looks binary)",
      );
    });

    it("decompresses a gzip body", async () => {
      expect(dataOf(await get({ url: server.url("/gzip") })).body).to.equal("unzipped!");
    });

    it("fails on non-2xx statuses, transient for 5xx and 429 only, always the remote's failure", async () => {
      const unavailable = await get({ url: server.url("/unavailable") });
      expect(unavailable).to.include({
        ok: false,
        error: "HTTP status 503",
        transient: true,
        remote: true,
      });
      expect(dataOf(unavailable)).to.include({ status: 503, body: "try later" });
      expect(await get({ url: server.url("/busy") })).to.include({ transient: true });
      const missing = await get({ url: server.url("/missing") });
      expect(missing).to.include({
        ok: false,
        error: "HTTP status 404",
        transient: false,
        remote: true,
      });
      expect(dataOf(missing)).to.include({ status: 404, body: "no such page" });
    });

    it("times out (not retried: a slow site stays slow), with timeout_ms clamped to the limit", async () => {
      const started = performance.now();
      const out = await get({ url: server.url("/slow") }, allowPrivate({ webFetchTimeoutMs: 300 }));
      expect(out).to.deep.equal({
        ok: false,
        error: "timed out after 300 ms",
        data: null,
        remote: true,
      });
      expect(performance.now() - started).to.be.below(3000);
      const clamped = await get(
        { url: server.url("/slow"), timeout_ms: 999_999 },
        allowPrivate({ webFetchTimeoutMs: 250 }),
      );
      expect(clamped.error).to.equal("timed out after 250 ms");
      const shorter = await get({ url: server.url("/slow"), timeout_ms: 200 });
      expect(shorter.error).to.equal("timed out after 200 ms");
    });

    it("stops on abort and leaves no listener on the signal", async () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 150);
      const out = await get(
        { url: server.url("/slow") },
        ctxWith({ webFetchAllowPrivate: true }, controller.signal),
      );
      expect(out).to.deep.equal({ ok: false, error: "aborted", data: null });
      expect(getEventListeners(controller.signal, "abort")).to.have.length(0);

      const already = new AbortController();
      already.abort();
      const none = await get({ url: server.url("/hello") }, ctxWith({}, already.signal));
      expect(none.error).to.equal("aborted");
      expect(server.connections).to.equal(1);
    });

    it("reports a refused connection as transient", async () => {
      const closed = await new TestServer({}).listen("127.0.0.1");
      const url = closed.url("/");
      await closed.close();
      const out = await get({ url });
      expect(out.ok).to.equal(false);
      expect(out.transient).to.equal(true);
      expect(out.error).to.match(/^request failed: .*ECONNREFUSED/);
    });
  });

  describe("with private addresses refused (the default)", () => {
    const refuse = (url: string) => get({ url }, ctxWith());

    it("refuses loopback, private, link-local and other non-public IP literals", async () => {
      const cases: [string, string][] = [
        [server.url("/hello"), "127.0.0.1 is a loopback address"],
        ["http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"],
        ["http://10.0.0.1/", "10.0.0.1 is a private address"],
        ["http://172.16.0.1/", "172.16.0.1 is a private address"],
        ["https://192.168.1.1/", "192.168.1.1 is a private address"],
        ["http://100.64.0.1/", "100.64.0.1 is a shared (carrier-grade NAT) address"],
        ["http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"],
        ["http://224.0.0.1/", "224.0.0.1 is a multicast address"],
        ["http://255.255.255.255/", "255.255.255.255 is a broadcast address"],
        [`http://[::1]:${server.port}/`, "::1 is a loopback address"],
        ["http://[::ffff:127.0.0.1]/", "::ffff:7f00:1 is a loopback address"],
        ["http://[fe80::1]/", "fe80::1 is a link-local address"],
        ["http://[fd12::1]/", "fd12::1 is a private address"],
        ["http://2130706433/", "127.0.0.1 is a loopback address"],
        ["http://0x7f.1/", "127.0.0.1 is a loopback address"],
        ["http://017700000001/", "127.0.0.1 is a loopback address"],
      ];
      for (const [url, why] of cases) {
        const out = await refuse(url);
        expect(out, url).to.deep.equal({
          ok: false,
          error: `refused: ${why}; web_fetch only reaches public addresses`,
          data: null,
        });
      }
      expect(server.connections).to.equal(0);
    });

    it("refuses a host name that resolves to loopback, at connect time", async () => {
      const out = await refuse(`http://localhost:${server.port}/hello`);
      expect(out.ok).to.equal(false);
      expect(out.transient).to.equal(undefined);
      expect(out.error).to.match(
        /^refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address; web_fetch only reaches public addresses$/,
      );
      expect(server.connections).to.equal(0);
    });

    it("refuses other schemes and invalid URLs", async () => {
      for (const scheme of ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/"]) {
        const out = await refuse(scheme);
        expect(out.error, scheme).to.match(
          /^refused: [a-z]+: URLs cannot be fetched; web_fetch only fetches http and https$/,
        );
      }
      expect((await refuse("not a url")).error).to.equal('invalid URL: "not a url"');
    });

    it("re-checks every redirect hop", async () => {
      // Allows exactly the test server's address, so the first hop goes through and the
      // redirect target meets the real policy.
      const onlyTestServer: AddressPolicy = (ip) =>
        ip === "127.0.0.1" ? undefined : nonPublicReason(ip);
      const tool = createWebFetchTool(onlyTestServer);
      const hop = (route: string) => fetchWith(tool, { url: server.url(route) }, ctxWith());

      expect((await hop("/hello")).ok).to.equal(true);
      expect((await hop("/to-other")).error).to.equal(
        "refused: 127.0.0.2 is a loopback address; web_fetch only reaches public addresses",
      );
      expect(other.connections).to.equal(0);
      expect((await hop("/to-metadata")).error).to.match(/^refused: 169\.254\.169\.254 is a link/);
      expect((await hop("/to-ipv6-loopback")).error).to.match(/^refused: ::1 is a loopback/);
      expect((await hop("/to-file")).error).to.match(/^refused: file: URLs cannot be fetched/);
    });

    it("re-checks a redirect to a host name when it connects", async () => {
      // Lets only the very first address through: the redirect to "localhost" (same server)
      // must be stopped by the lookup of the second hop.
      let checks = 0;
      const firstOnly: AddressPolicy = (ip) => (checks++ === 0 ? undefined : nonPublicReason(ip));
      const tool = createWebFetchTool(firstOnly);
      const target = `http://localhost:${server.port}/hello`;
      const local = await new TestServer({ "/": redirect(target) }).listen("127.0.0.1");
      try {
        const out = await fetchWith(tool, { url: local.url("/") }, ctxWith());
        expect(out.error).to.match(/^refused: localhost resolves to .*, a loopback address/);
        expect(local.requests).to.deep.equal(["/"]);
        expect(server.connections).to.equal(0);
      } finally {
        await local.close();
      }
    });
  });

  describe("address classifier", () => {
    it("classifies IPv4, IPv6 and IPv4-embedding IPv6 forms", () => {
      const expected: Record<string, string> = {
        "8.8.8.8": "public",
        "1.1.1.1": "public",
        "172.32.0.1": "public",
        "100.128.0.1": "public",
        "127.0.0.1": "loopback",
        "127.255.255.254": "loopback",
        "::1": "loopback",
        "[::1]": "loopback",
        "0.0.0.0": "unspecified",
        "::": "unspecified",
        "10.255.0.1": "private",
        "172.31.255.255": "private",
        "192.168.0.1": "private",
        "fc00::1": "private",
        "fdff::1": "private",
        "169.254.169.254": "link-local",
        "fe80::1%eth0": "link-local",
        "100.64.0.1": "shared",
        "224.0.0.251": "multicast",
        "ff02::1": "multicast",
        "255.255.255.255": "broadcast",
        "240.0.0.1": "reserved",
        "192.0.2.1": "reserved",
        "2001:db8::1": "reserved",
        "::ffff:127.0.0.1": "loopback",
        "::ffff:7f00:1": "loopback",
        "::ffff:10.0.0.1": "private",
        "::ffff:8.8.8.8": "public",
        "::127.0.0.1": "loopback",
        "64:ff9b::a9fe:a9fe": "link-local",
        "2002:c0a8:101::1": "private",
        "2606:4700:4700::1111": "public",
        localhost: "invalid",
        "1::2::3": "invalid",
        "256.0.0.1": "invalid",
      };
      const actual = Object.fromEntries(
        Object.keys(expected).map((ip) => [ip, classifyAddress(ip)]),
      );
      expect(actual).to.deep.equal(expected);
      expect(nonPublicReason("8.8.8.8")).to.equal(undefined);
      expect(nonPublicReason("::1")).to.equal("a loopback address");
    });
  });
});
