/**
 * The store contract every adapter must pass (see the header of src/store/port.ts).
 *
 * `makeStore` opens a new handle on the current test's store. The caller gives each test a fresh,
 * empty store (for example a new file or database in a `beforeEach` around this call); calling
 * `makeStore` twice within one test must give two independent handles — two connections, as two
 * processes would have — on that same store. Every handle opened here is closed after each test.
 */
import type { Store } from "../../src/store/port.js";
import { describeBucketContract } from "./contract-buckets.js";
import { describeEventContract } from "./contract-events.js";
import { describeTurnLifecycleContract } from "./contract-lifecycle.js";
import { describeRecordContract } from "./contract-records.js";
import { describeTurnContract } from "./contract-turns.js";

export type OpenStore = () => Promise<Store>;

export function runStoreContract(name: string, makeStore: OpenStore): void {
  describe(`store contract: ${name}`, () => {
    const opened: Store[] = [];
    const open: OpenStore = async () => {
      const store = await makeStore();
      opened.push(store);
      return store;
    };

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });

    it("answers ping", async () => {
      const store = await open();
      await store.ping();
    });

    describeTurnContract(open);
    describeTurnLifecycleContract(open);
    describeEventContract(open);
    describeBucketContract(open);
    describeRecordContract(open);
  });
}
