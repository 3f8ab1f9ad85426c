import { expect } from "chai";
import { CappedOutput } from "../../../src/tools/builtin/capped-output.js";
import { trimPartialEnd, trimPartialStart } from "../../../src/tools/builtin/utf8.js";

function collect(maxBytes: number, chunks: (string | Buffer)[]): CappedOutput {
  const out = new CappedOutput(maxBytes);
  for (const c of chunks) out.write(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return out;
}

describe("tools/capped-output", () => {
  it("keeps everything up to the cap, whatever the chunking", () => {
    const out = collect(10, ["abc", "defg", "hij"]);
    expect(out.text()).to.equal("abcdefghij");
    expect(out.truncated).to.equal(false);
  });

  it("keeps head and tail halves and counts the omitted middle", () => {
    const text = "0123456789abcdefghijklmnopqrstuvwxyz";
    const bytewise = collect(10, text.split(""));
    const oneChunk = collect(10, [text]);
    const expected = `01234\n…[26 bytes omitted]…\nvwxyz`;
    expect(bytewise.text()).to.equal(expected);
    expect(oneChunk.text()).to.equal(expected);
    expect(oneChunk.truncated).to.equal(true);
  });

  it("gives the extra byte of an odd cap to the head", () => {
    expect(collect(5, ["abcdefgh"]).text()).to.equal("abc\n…[3 bytes omitted]…\ngh");
  });

  it("does not split characters at the cuts and counts the bytes it drops", () => {
    // "é" is 2 bytes: a 5-byte head would end inside the third one.
    const out = collect(10, ["é".repeat(20)]);
    expect(out.text()).to.equal("éé\n…[32 bytes omitted]…\néé");
  });

  it("trimPartialEnd / trimPartialStart drop only partial characters", () => {
    const euro = Buffer.from("€"); // 3 bytes
    expect(
      trimPartialEnd(Buffer.concat([Buffer.from("a"), euro.subarray(0, 2)])).toString(),
    ).to.equal("a");
    expect(trimPartialEnd(Buffer.from("a€")).toString()).to.equal("a€");
    expect(
      trimPartialStart(Buffer.concat([euro.subarray(1), Buffer.from("b")])).toString(),
    ).to.equal("b");
    expect(trimPartialStart(Buffer.from("€b")).toString()).to.equal("€b");
    const invalid = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x41]);
    expect(trimPartialStart(invalid)).to.equal(invalid);
  });
});
