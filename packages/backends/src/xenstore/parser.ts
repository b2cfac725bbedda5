/**
 * Incremental XenStore message decoder. Bytes arrive in arbitrary chunks (a header split over
 * several writes, several messages in one chunk); the decoder is a two-state machine:
 * `header` collects 16 bytes, `payload` collects `len` bytes, then a message is emitted and the
 * state returns to `header`. A header whose `len` exceeds XENSTORE_PAYLOAD_MAX moves it to the
 * terminal state `failed`: the stream cannot be resynchronised, so the connection must be dropped.
 */
import { decodeHeader, XENSTORE_PAYLOAD_MAX, XS_HEADER_SIZE, type XsHeader, type XsMessage } from "./wire.js";

/** Stable codes for malformed streams (tests and logs match on these, not on message text). */
export const XS_STREAM_ERRORS = {
  /** Header announced more than XENSTORE_PAYLOAD_MAX payload bytes. */
  payloadTooLarge: "XS_PAYLOAD_TOO_LARGE",
  /** The stream ended inside a header or payload. */
  truncated: "XS_TRUNCATED",
  /** Bytes were fed after the decoder had failed. */
  afterFailure: "XS_AFTER_FAILURE",
} as const;
export type XsStreamErrorCode = (typeof XS_STREAM_ERRORS)[keyof typeof XS_STREAM_ERRORS];

export class XsStreamError extends Error {
  constructor(
    readonly code: XsStreamErrorCode,
    detail: string,
    /** Messages completed in the same chunk before the failure (still valid requests). */
    readonly messages: XsMessage[] = [],
  ) {
    super(`${code}: ${detail}`);
    this.name = "XsStreamError";
  }
}

export type ParserState = "header" | "payload" | "failed";

export class XsParser {
  private stateName: ParserState = "header";
  private readonly headerBuf = new Uint8Array(XS_HEADER_SIZE);
  private headerFill = 0;
  private header: XsHeader | undefined;
  private payload = new Uint8Array(0);
  private payloadFill = 0;
  private failure: XsStreamError | undefined;

  get state(): ParserState {
    return this.stateName;
  }

  /** Bytes of an incomplete message held so far (0 at a message boundary). */
  get pending(): number {
    return this.stateName === "payload" ? XS_HEADER_SIZE + this.payloadFill : this.headerFill;
  }

  /**
   * Consumes a chunk; returns the messages it completed. Throws XsStreamError (and stays failed)
   * on an oversize header; the messages completed earlier in the same chunk travel in the
   * error's `messages`, so the caller can answer them before dropping the connection.
   */
  feed(chunk: Uint8Array): XsMessage[] {
    if (this.failure) throw new XsStreamError(XS_STREAM_ERRORS.afterFailure, this.failure.message);
    const out: XsMessage[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.stateName === "header") {
        const take = Math.min(XS_HEADER_SIZE - this.headerFill, chunk.length - i);
        this.headerBuf.set(chunk.subarray(i, i + take), this.headerFill);
        this.headerFill += take;
        i += take;
        if (this.headerFill < XS_HEADER_SIZE) break;
        const h = decodeHeader(this.headerBuf);
        this.headerFill = 0;
        if (h.len > XENSTORE_PAYLOAD_MAX) {
          this.stateName = "failed";
          this.failure = new XsStreamError(
            XS_STREAM_ERRORS.payloadTooLarge,
            `payload length ${h.len} exceeds ${XENSTORE_PAYLOAD_MAX}`,
            out,
          );
          throw this.failure;
        }
        this.header = h;
        this.payload = new Uint8Array(h.len);
        this.payloadFill = 0;
        this.stateName = "payload";
      }
      // state is "payload" here; a zero-length payload completes at once.
      const h = this.header!;
      const take = Math.min(h.len - this.payloadFill, chunk.length - i);
      this.payload.set(chunk.subarray(i, i + take), this.payloadFill);
      this.payloadFill += take;
      i += take;
      if (this.payloadFill === h.len) {
        out.push({ type: h.type, reqId: h.reqId, txId: h.txId, payload: this.payload });
        this.header = undefined;
        this.stateName = "header";
      }
    }
    return out;
  }

  /** Declares end of stream; throws XS_TRUNCATED when it ends inside a message. */
  end(): void {
    if (this.stateName === "failed") return;
    if (this.pending > 0)
      throw new XsStreamError(XS_STREAM_ERRORS.truncated, `stream ended with ${this.pending} bytes of a message`);
  }

  /** Forgets partial input (ring reconnect, XS_RESET-style restart). */
  reset(): void {
    this.stateName = "header";
    this.headerFill = 0;
    this.header = undefined;
    this.payloadFill = 0;
    this.failure = undefined;
  }
}
