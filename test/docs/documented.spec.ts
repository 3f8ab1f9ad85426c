/**
 * The docs keep up with the code: every environment setting is in docs/operations.md, every
 * event type in docs/api.md, every v1 route of the OpenAPI document in docs/api.md.
 */
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { ENV_SETTINGS } from "../../src/config/env.js";
import { openApiDocument } from "../../src/contract/openapi.js";
import { EVENT_TYPES } from "../../src/events/envelope.js";

const read = (file: string) => readFileSync(new URL(`../../docs/${file}`, import.meta.url), "utf8");

describe("docs", () => {
  it("operations.md lists every environment setting", () => {
    const doc = read("operations.md");
    const missing = ENV_SETTINGS.map((s) => s.env).filter(
      (name) => !new RegExp(`\\|\\s*\`${name}\`\\s*\\|`).test(doc),
    );
    expect(missing).to.deep.equal([]);
  });

  it("api.md describes every event type", () => {
    const doc = read("api.md");
    expect(EVENT_TYPES.filter((type) => !doc.includes(`\`${type}\``))).to.deep.equal([]);
  });

  it("api.md has a section for every route of the OpenAPI document", () => {
    const doc = read("api.md");
    const paths = Object.keys(openApiDocument().paths ?? {});
    expect(paths.length).to.be.greaterThan(5);
    expect(paths.filter((p) => !doc.includes(p))).to.deep.equal([]);
  });
});
