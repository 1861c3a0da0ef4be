// Reading a Redfish answer's body within bounds, as it streams in: its size (a declared Content-Length over the cap
// is refused before a byte is read) and the nesting depth of its JSON (counted over the bytes in one pass, strings
// and escapes skipped), so neither a body of gigabytes nor a parse bomb of nested arrays is ever held or parsed.
// Structural JSON characters are ASCII and no byte of a multi-byte UTF-8 sequence is below 0x80, so bytes are
// scanned without decoding.
import type { Readable } from 'node:stream';

export interface AnswerBounds {
  maxBytes: number;
  maxDepth: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** Counts the nesting depth of JSON text fed to it in chunks; `deepest` is the most seen so far. */
class DepthScanner {
  deepest = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  feed(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
      } else if (b === QUOTE) {
        this.inString = true;
      } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (++this.depth > this.deepest) this.deepest = this.depth;
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        if (this.depth > 0) this.depth--;
      }
    }
  }
}

/** The body as text, or why it was refused (the body is destroyed then: nothing more is read). */
export async function readBoundedJsonText(body: Readable, contentLength: string | string[] | undefined, bounds: AnswerBounds): Promise<string | { refused: string }> {
  const declared = Number(Array.isArray(contentLength) ? contentLength[0] : contentLength);
  if (Number.isFinite(declared) && declared > bounds.maxBytes) {
    body.destroy();
    return { refused: `its Content-Length of ${declared} bytes is over the limit of ${bounds.maxBytes}` };
  }
  const chunks: Buffer[] = [];
  const depth = new DepthScanner();
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > bounds.maxBytes) {
      body.destroy();
      return { refused: `its body is larger than the limit of ${bounds.maxBytes} bytes` };
    }
    depth.feed(chunk);
    if (depth.deepest > bounds.maxDepth) {
      body.destroy();
      return { refused: `its JSON is nested deeper than the limit of ${bounds.maxDepth} levels` };
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}
