import { expect } from "chai";
import { parseToolArguments } from "../../src/llm/tool-call-repair.js";
import { breakArguments } from "../../src/sim/faults.js";

/** Every (path, scalar) leaf of a JSON value, e.g. `a.b[0]` → 1. */
function leaves(value: unknown, path = "$", out = new Map<string, unknown>()) {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) leaves(v, `${path}[${i}]`, out);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) leaves(v, `${path}.${JSON.stringify(k)}`, out);
  } else out.set(path, value);
  return out;
}

describe("parseToolArguments", () => {
  describe("without repair", () => {
    it("reads empty and blank arguments as {}", () => {
      for (const raw of ["", "  ", "\n\t"]) {
        expect(parseToolArguments(raw), JSON.stringify(raw)).to.deep.equal({ ok: true, value: {} });
      }
    });

    it("takes a valid JSON object as it is, with no repair note", () => {
      const raw = '{"path": "a \\"b\\" {c}", "n": [1, 2.5e3, -4], "deep": {"x": null}}';
      expect(parseToolArguments(raw)).to.deep.equal({ ok: true, value: JSON.parse(raw) });
      expect(parseToolArguments(' {"a":1} \n')).to.deep.equal({ ok: true, value: { a: 1 } });
    });

    it("refuses valid JSON that is not an object", () => {
      for (const raw of ["[1,2]", "1", "true", "null", '"text"', "[{}]"]) {
        expect(parseToolArguments(raw), raw).to.deep.equal({
          ok: false,
          error: "arguments must be a JSON object",
        });
      }
    });

    it("decodes an object that was sent as a JSON string", () => {
      expect(parseToolArguments(JSON.stringify('{"path":"."}'))).to.deep.equal({
        ok: true,
        value: { path: "." },
        repaired: "decoded a JSON string",
      });
      expect(parseToolArguments(JSON.stringify("{not json")).ok).to.equal(false);
    });
  });

  describe("repairs", () => {
    const cases: [string, string, unknown, string][] = [
      [
        "a fenced block",
        '```json\n{"path": "src/a.ts"}\n```',
        { path: "src/a.ts" },
        "removed code fences",
      ],
      ["a fence without a language", '```\n{"a": 1}\n```', { a: 1 }, "removed code fences"],
      [
        "a fence inside prose",
        'Here you go:\n```json\n{"a": 1}\n```\nLet me know.',
        { a: 1 },
        "removed code fences",
      ],
      [
        "prose around the object",
        'Sure! I will call it with {"path": "."} as arguments.',
        { path: "." },
        "dropped text around the object",
      ],
      [
        "braces inside strings of a prose-wrapped object",
        'args: {"text": "a } b {"} end',
        { text: "a } b {" },
        "dropped text around the object",
      ],
      ["one closing brace too many", '{"a": 1}}', { a: 1 }, "dropped text around the object"],
      [
        "trailing commas",
        '{"a": [1, 2, ], "b": {"c": 3,},}',
        { a: [1, 2], b: { c: 3 } },
        "removed trailing commas",
      ],
      [
        "Python literals outside strings only",
        '{"a": True, "b": False, "c": None, "d": "True None", "e": [True]}',
        { a: true, b: false, c: null, d: "True None", e: [true] },
        "replaced Python literals",
      ],
      [
        "a missing final brace after a string",
        '{"path": "src/main.ts"',
        { path: "src/main.ts" },
        "closed 1 bracket",
      ],
      [
        "missing brackets after nested complete values",
        '{"a": {"b": ["x", true]',
        { a: { b: ["x", true] } },
        "closed 2 brackets",
      ],
      ["a missing brace after a literal", '{"ok": false', { ok: false }, "closed 1 bracket"],
      ["a missing brace after an array", '{"a": []', { a: [] }, "closed 1 bracket"],
      ["a closing brace inside a string", '{"a": "}"', { a: "}" }, "closed 1 bracket"],
      [
        "escaped quotes before a missing brace",
        '{"a": "say \\"hi\\""',
        { a: 'say "hi"' },
        "closed 1 bracket",
      ],
      [
        "several problems at once",
        '```json\n{"a": True, "b": [1,]\n```',
        { a: true, b: [1] },
        "removed code fences, replaced Python literals, removed trailing commas, closed 1 bracket",
      ],
    ];
    for (const [name, raw, value, repaired] of cases) {
      it(name, () => {
        expect(parseToolArguments(raw)).to.deep.equal({ ok: true, value, repaired });
      });
    }
  });

  describe("refuses", () => {
    const cases: [string, string][] = [
      ["a cut key", '{"pa'],
      ["a dangling key", '{"path"'],
      ["a dangling colon", '{"path":'],
      ["a dangling comma", '{"a": "x",'],
      ["a cut string value", '{"command":"l'],
      ["a cut number, which could have been longer", '{"n": 12'],
      ["a cut literal", '{"a": tru'],
      ["a bare opening brace", "{"],
      ["an opening bracket with nothing after it", '{"a": ['],
      ["a nested opening brace with nothing after it", '{"a": {'],
      ["a cut number inside an array", '{"a": [1, 2'],
      ["mismatched brackets", '{"a": [1}'],
      ["single-quoted keys", "{'a': 1}"],
      ["no object at all", "just some prose"],
      ["a fenced array", "```json\n[1, 2]\n```"],
      ["prose around a broken object", 'try {"a": 1 "b": 2} please'],
      ["two objects in a row", '{"path": "a"} {"path": "b"}'],
    ];
    for (const [name, raw] of cases) {
      it(name, () => {
        const parsed = parseToolArguments(raw);
        expect(parsed.ok, JSON.stringify(parsed)).to.equal(false);
        if (!parsed.ok) expect(parsed.error).to.be.a("string").and.not.equal("");
      });
    }

    it("with the original text's parse error", () => {
      const parsed = parseToolArguments('{"path":');
      let expected = "";
      try {
        JSON.parse('{"path":');
      } catch (err) {
        expected = (err as Error).message;
      }
      expect(parsed).to.deep.equal({ ok: false, error: expected });
    });

    it("a repaired text that still is not an object", () => {
      expect(parseToolArguments("```\n[1,]\n```").ok).to.equal(false);
    });
  });

  describe("arguments cut by a truncated stream", () => {
    const originals = [
      { path: "." },
      { path: "src/main.ts" },
      { command: "ls -la files" },
      { text: "hi there", n: 42 },
      { a: "x", b: ["y", "z"], c: { d: true, e: null } },
      {
        list: [
          { id: 1, name: "one" },
          { id: 22, name: "two" },
        ],
        ok: false,
      },
      { nested: { deeper: { value: "v", n: -1.5 } } },
    ];

    it("the simulator's broken_tool_json cuts are never repaired", () => {
      for (const args of [...originals.map((o) => JSON.stringify(o)), "{}"]) {
        const broken = breakArguments(args);
        const parsed = parseToolArguments(broken);
        expect(parsed.ok, `${broken} → ${JSON.stringify(parsed)}`).to.equal(false);
      }
    });

    it("a repaired cut never holds a value the original did not have", () => {
      let repairedCount = 0;
      for (const original of originals) {
        for (const text of [JSON.stringify(original), JSON.stringify(original, null, 2)]) {
          const want = leaves(original);
          for (let cut = 0; cut < text.length; cut++) {
            const parsed = parseToolArguments(text.slice(0, cut));
            if (!parsed.ok || cut === 0) continue;
            repairedCount++;
            for (const [path, value] of leaves(parsed.value)) {
              expect(want.has(path), `${text.slice(0, cut)}: ${path}`).to.equal(true);
              expect(want.get(path), `${text.slice(0, cut)}: ${path}`).to.equal(value);
            }
          }
        }
      }
      // Cuts right after a complete string, literal or closed bracket are repaired; the rest not.
      expect(repairedCount).to.be.greaterThan(5);
    });
  });
});
