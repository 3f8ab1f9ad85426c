/**
 * ModelBudget against a real Redis, as two workers (two instances on two connections) sharing one
 * budget: cooldowns, requests and tokens per minute, the concurrency semaphore and its expiry,
 * and that a denial never burns budget. Each test uses its own model names under a private prefix.
 */
import { expect } from "chai";
import { Redis } from "ioredis";
import {
  type BudgetDenial,
  type BudgetPermit,
  ModelBudget,
  type ModelBudgetUsage,
  type ModelLimits,
} from "../../src/llm/model-budget.js";
import { deleteKeys, REDIS_URL } from "../helpers/redis.js";
import { testPrefix, uniqueId } from "../queue/helpers.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("ModelBudget", () => {
  const prefix = testPrefix("budget");
  let redisA: Redis;
  let redisB: Redis;

  before(() => {
    redisA = new Redis(REDIS_URL);
    redisB = new Redis(REDIS_URL);
  });

  after(async () => {
    await deleteKeys(redisA, `${prefix}:*`);
    await Promise.all([redisA.quit(), redisB.quit()]);
  });

  /** Two workers' budgets for one fresh model with these limits. */
  function workers(limits: ModelLimits, options: { permitTtlMs?: number } = {}) {
    const model = uniqueId("model");
    const a = new ModelBudget(redisA, prefix, { [model]: limits }, options);
    const b = new ModelBudget(redisB, prefix, { [model]: limits }, options);
    return { model, a, b };
  }

  async function permit(budget: ModelBudget, model: string, tokens = 1): Promise<BudgetPermit> {
    const result = await budget.tryAcquire(model, tokens);
    if (!result.ok) throw new Error(`expected a permit, got ${result.reason}`);
    return result;
  }

  async function denial(budget: ModelBudget, model: string, tokens = 1): Promise<BudgetDenial> {
    const result = await budget.tryAcquire(model, tokens);
    if (result.ok) throw new Error("expected a denial, got a permit");
    return result;
  }

  async function usageOf(budget: ModelBudget, model: string): Promise<ModelBudgetUsage> {
    const row = (await budget.usage()).find((u) => u.model === model);
    if (!row) throw new Error(`no usage row for ${model}`);
    return row;
  }

  it("always admits a model without limits and keeps no counters for it", async () => {
    const model = uniqueId("free");
    const budget = new ModelBudget(redisA, prefix, { [model]: {} });
    for (let i = 0; i < 20; i++) await (await permit(budget, model, 10_000)).release(50_000);
    expect(await redisA.keys(`${prefix}:mb:*${model}`)).to.deep.equal([]);
    expect((await budget.usage()).map((u) => u.model)).to.not.include(model);
  });

  it("refuses limits that are not positive integers", () => {
    expect(() => new ModelBudget(redisA, prefix, { m: { requestsPerMinute: 0 } })).to.throw(
      /requestsPerMinute/,
    );
    expect(() => new ModelBudget(redisA, prefix, { m: { maxConcurrency: 1.5 } })).to.throw(
      /maxConcurrency/,
    );
  });

  describe("requests per minute", () => {
    it("denies past the limit with the wait until the window ends, across workers", async () => {
      const { model, a, b } = workers({ requestsPerMinute: 3 });
      await permit(a, model);
      await permit(b, model);
      await permit(a, model);
      for (const budget of [a, b, a]) {
        const denied = await denial(budget, model);
        expect(denied.reason).to.equal("requests_per_minute");
        expect(denied.retryAfterMs).to.be.greaterThan(0).and.at.most(60_000);
      }
      // Three refused attempts later the window still counts the three admitted calls only.
      expect((await usageOf(b, model)).requestsThisMinute).to.equal(3);
    });

    it("gives the request back when the token check denies", async () => {
      const { model, a } = workers({ requestsPerMinute: 2, tokensPerMinute: 100 });
      await permit(a, model, 80);
      const denied = await denial(a, model, 50);
      expect(denied.reason).to.equal("tokens_per_minute");
      expect(await usageOf(a, model)).to.include({ requestsThisMinute: 1, tokensThisMinute: 80 });
      // Neither the refused request nor its refused tokens count: 80 + 20 fits exactly.
      await permit(a, model, 20);
      expect(await usageOf(a, model)).to.include({ requestsThisMinute: 2, tokensThisMinute: 100 });
    });

    it("gives the concurrency slot back when the request check denies", async () => {
      const { model, a } = workers({ requestsPerMinute: 1, maxConcurrency: 5 });
      await (await permit(a, model)).release();
      expect((await denial(a, model)).reason).to.equal("requests_per_minute");
      expect(await usageOf(a, model)).to.include({ inFlight: 0, requestsThisMinute: 1 });
    });
  });

  describe("tokens per minute", () => {
    it("charges the estimate, then corrects it with the real usage on release", async () => {
      const { model, a, b } = workers({ tokensPerMinute: 1_000 });
      const first = await permit(a, model, 600);
      expect((await usageOf(b, model)).tokensThisMinute).to.equal(600);
      await first.release(200);
      expect((await usageOf(b, model)).tokensThisMinute).to.equal(200);

      const second = await permit(b, model, 300);
      expect((await usageOf(a, model)).tokensThisMinute).to.equal(500);
      await second.release(700);
      expect((await usageOf(a, model)).tokensThisMinute).to.equal(900);

      const denied = await denial(a, model, 200);
      expect(denied.reason).to.equal("tokens_per_minute");
      expect(denied.retryAfterMs).to.be.greaterThan(0).and.at.most(60_000);
      expect((await usageOf(a, model)).tokensThisMinute).to.equal(900);
      await (await permit(a, model, 100)).release();
      expect((await usageOf(a, model)).tokensThisMinute).to.equal(1_000);
    });

    it("charges at least one token and at most the whole window", async () => {
      const { model, a } = workers({ tokensPerMinute: 100 });
      await permit(a, model, 0);
      expect((await usageOf(a, model)).tokensThisMinute).to.equal(1);
      const { model: big, a: budget } = workers({ tokensPerMinute: 100 });
      await permit(budget, big, 5_000);
      expect((await usageOf(budget, big)).tokensThisMinute).to.equal(100);
    });
  });

  describe("concurrency", () => {
    it("caps calls in flight across workers and admits again after a release", async () => {
      const { model, a, b } = workers({ maxConcurrency: 2 });
      const held = await permit(a, model);
      await permit(b, model);
      for (const budget of [a, b]) {
        expect(await denial(budget, model)).to.deep.equal({
          ok: false,
          reason: "concurrency",
          retryAfterMs: 250,
        });
      }
      expect((await usageOf(b, model)).inFlight).to.equal(2);
      await held.release();
      expect((await usageOf(b, model)).inFlight).to.equal(1);
      await permit(b, model);
      expect((await denial(a, model)).reason).to.equal("concurrency");
    });

    it("frees the slot of a permit nobody released once its TTL passes", async () => {
      const { model, a, b } = workers({ maxConcurrency: 1 }, { permitTtlMs: 80 });
      const crashed = await permit(a, model);
      expect((await denial(b, model)).reason).to.equal("concurrency");
      await sleep(150);
      expect((await usageOf(b, model)).inFlight).to.equal(0);
      await permit(b, model);
      // The late release of the expired permit must not free the new holder's slot.
      await crashed.release();
      expect((await usageOf(a, model)).inFlight).to.equal(1);
      expect((await denial(a, model)).reason).to.equal("concurrency");
    });

    it("releases once however often release is called", async () => {
      const { model, a, b } = workers({ maxConcurrency: 2, tokensPerMinute: 1_000 });
      const first = await permit(a, model, 100);
      await permit(b, model, 100);
      await first.release(50);
      await first.release(50);
      await first.release(0);
      expect(await usageOf(a, model)).to.include({ inFlight: 1, tokensThisMinute: 150 });
      await permit(a, model, 100);
      expect((await denial(b, model)).reason).to.equal("concurrency");
    });
  });

  describe("cooldown", () => {
    it("holds every worker's calls with the remaining time, and only grows", async () => {
      const { model, a, b } = workers({ requestsPerMinute: 10, maxConcurrency: 1 });
      expect(await b.cooldownMs(model)).to.equal(0);
      await a.coolDown(model, 1_000);
      const denied = await denial(b, model);
      expect(denied.reason).to.equal("cooldown");
      expect(denied.retryAfterMs).to.be.greaterThan(0).and.at.most(1_000);

      await b.coolDown(model, 100);
      expect(await a.cooldownMs(model))
        .to.be.greaterThan(100)
        .and.at.most(1_000);
      await b.coolDown(model, 5_000);
      expect(await a.cooldownMs(model))
        .to.be.greaterThan(1_000)
        .and.at.most(5_000);
      // Held calls took nothing.
      expect(await usageOf(a, model)).to.include({ requestsThisMinute: 0, inFlight: 0 });
    });

    it("applies to models without limits and ends by itself", async () => {
      const model = uniqueId("free");
      const a = new ModelBudget(redisA, prefix, {});
      const b = new ModelBudget(redisB, prefix, {});
      await a.coolDown(model, 60);
      expect((await denial(b, model)).reason).to.equal("cooldown");
      await sleep(120);
      expect(await b.cooldownMs(model)).to.equal(0);
      await permit(b, model);
    });
  });

  describe("probe after a hold", () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    it("lets one call through when a hold ends and holds the others until it goes through", async () => {
      const { model, a, b } = workers({});
      await a.coolDown(model, 50);
      await sleep(80);
      const probe = await permit(a, model);
      const held = await denial(b, model);
      expect(held.reason).to.equal("cooldown");
      expect(held.retryAfterMs).to.be.within(1, 2_000);
      expect(await b.cooldownMs(model), "parked turns see the probe hold too").to.be.greaterThan(0);

      await probe.release(10);
      await permit(b, model);
      await permit(a, model);
    });

    it("keeps the others held when the probe fails, and a 429 starts a new hold", async () => {
      const { model, a, b } = workers({});
      await a.coolDown(model, 30);
      await sleep(50);
      const probe = await permit(a, model);
      await probe.release();
      expect((await denial(b, model)).reason, "a failed probe does not open the gate").to.equal(
        "cooldown",
      );
      await a.coolDown(model, 5_000);
      expect(await b.cooldownMs(model)).to.be.greaterThan(2_000);
    });
  });

  describe("usage", () => {
    it("reports each limited or cooling model with its figures", async () => {
      const limits = { requestsPerMinute: 10, tokensPerMinute: 1_000, maxConcurrency: 3 };
      const limited = uniqueId("model");
      const idle = uniqueId("model");
      const cooling = uniqueId("free");
      const unlisted = uniqueId("free");
      // Callers may hand over whole model configs: only the limits may come back out.
      const config = { ...limits, apiKey: "sk-secret", baseUrl: "https://example.test" };
      const budget = new ModelBudget(redisA, prefix, {
        [limited]: config,
        [idle]: { maxConcurrency: 1 },
        [unlisted]: {},
      });
      const first = await permit(budget, limited, 100);
      await permit(budget, limited, 200);
      await first.release(150);
      await budget.coolDown(cooling, 30_000);
      await permit(budget, unlisted);

      const rows = await budget.usage();
      const mine = rows.filter((row) => [limited, idle, cooling, unlisted].includes(row.model));
      expect(mine.map((row) => row.model)).to.have.members([limited, idle, cooling]);
      expect(mine.find((row) => row.model === limited)).to.deep.equal({
        model: limited,
        limits,
        requestsThisMinute: 2,
        tokensThisMinute: 350,
        inFlight: 1,
        cooldownRemainingMs: 0,
      });
      expect(mine.find((row) => row.model === idle)).to.deep.equal({
        model: idle,
        limits: { maxConcurrency: 1 },
        requestsThisMinute: 0,
        tokensThisMinute: 0,
        inFlight: 0,
        cooldownRemainingMs: 0,
      });
      const cooled = mine.find((row) => row.model === cooling);
      expect(cooled).to.include({ inFlight: 0, requestsThisMinute: 0, tokensThisMinute: 0 });
      expect(cooled?.limits).to.deep.equal({});
      expect(cooled?.cooldownRemainingMs).to.be.greaterThan(0).and.at.most(30_000);
    });

    it("drops a model whose cooldown has ended", async () => {
      const model = uniqueId("free");
      const budget = new ModelBudget(redisA, prefix, {});
      await budget.coolDown(model, 50);
      expect((await budget.usage()).map((row) => row.model)).to.include(model);
      await sleep(100);
      expect((await budget.usage()).map((row) => row.model)).to.not.include(model);
    });
  });
});
