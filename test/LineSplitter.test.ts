/** The process engine's line splitter: exact lines across chunk boundaries, in time linear in the output. */
import { describe, expect, it } from "@effect/vitest"
import { makeLineSplitter } from "../src/node/ProcessEngine.js"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("makeLineSplitter", () => {
  it("splits at newlines across chunks and multi-byte characters, and keeps the rest for the end", () => {
    const splitter = makeLineSplitter()
    const text = bytes("one\ntw\u00f6\n\nthr\u{1F600}e\r\nlast")
    const lines: Array<string> = []
    // One byte at a time: every boundary, inside characters too.
    for (let i = 0; i < text.length; i++) lines.push(...splitter.push(text.subarray(i, i + 1)))
    lines.push(...splitter.end())
    expect(lines).toEqual(["one", "tw\u00f6", "", "thr\u{1F600}e\r", "last"])
    expect(splitter.end()).toEqual([])
  })

  it("takes 64 MiB without a newline in 64 KiB chunks (quadratic joining would not finish)", () => {
    const splitter = makeLineSplitter()
    const chunk = new Uint8Array(64 * 1024).fill(0x78)
    for (let i = 0; i < 1024; i++) expect(splitter.push(chunk)).toEqual([])
    expect(splitter.push(bytes("\n"))[0]).toHaveLength(64 * 1024 * 1024)
  })
})
