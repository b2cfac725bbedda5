/**
 * The outer layers of a save file / migration stream (xen-abi.md §9.0–9.1): xl's save-file header
 * (magic, byte order, flags, the domain config as optional data), then libxl's stream (header
 * "LibxlFmt" v2, records framed like libxc's) whose LIBXC_CONTEXT record is followed inline by
 * the hypervisor's stream (`@xenon/hypervisor` StreamWriter / StreamRestore), then libxl's END.
 */
import { encodeRecord, MigrationStreamError } from "@xenon/hypervisor";

/** xl's save_file_header magic: 32 bytes. */
export const XL_MAGIC = new TextEncoder().encode("Xen saved domain, xl format\n \0 \r");
export const XL_BYTEORDER = 0x01020304;
export const XL_HEADER_SIZE = 48;
/** mandatory_flags bits. */
export const XL_MANDATORY_CONFIG_JSON = 1;
export const XL_MANDATORY_STREAM_V2 = 2;
/** The config text is capped (xl.cfg files are small). */
export const XL_CONFIG_MAX = 1 << 20;

export const LIBXL_IDENT_HI = 0x4c696278; // "Libx"
export const LIBXL_IDENT_LO = 0x6c466d74; // "lFmt"
export const LIBXL_VERSION = 2;
export const LIBXL_HEADER_SIZE = 16;
export const LibxlRec = { END: 0, LIBXC_CONTEXT: 1, EMULATOR_XENSTORE_DATA: 2, EMULATOR_CONTEXT: 3 } as const;
/**
 * EMULATOR_CONTEXT's emulator ids (libxl's device_model_version: 1 qemu-traditional, 2
 * qemu-xen). Xenon's virtio driver domains have their own, well clear of libxl's.
 */
export const EmulatorId = { XENON_VIRTIO: 0x10 } as const;
/** A device model's state is small (registers and ring positions); bigger is refused. */
export const EMULATOR_CONTEXT_MAX = 1 << 20;

/** The xl header with the config (JSON text) as optional data. Little-endian writer. */
export function encodeXlHeader(configJson: string): Uint8Array {
  const config = new TextEncoder().encode(configJson);
  if (config.length > XL_CONFIG_MAX) throw new RangeError(`config of ${config.length} bytes is too long`);
  const out = new Uint8Array(XL_HEADER_SIZE + 4 + config.length);
  const v = new DataView(out.buffer);
  out.set(XL_MAGIC);
  v.setUint32(32, XL_BYTEORDER, true);
  v.setUint32(36, XL_MANDATORY_CONFIG_JSON | XL_MANDATORY_STREAM_V2, true);
  v.setUint32(40, 0, true);
  v.setUint32(44, 4 + config.length, true);
  v.setUint32(48, config.length, true);
  out.set(config, 52);
  return out;
}

/** libxl's 16-byte header (big-endian): ident, version 2, options (bit 0 clear: little-endian records). */
export function encodeLibxlHeader(): Uint8Array {
  const out = new Uint8Array(LIBXL_HEADER_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, LIBXL_IDENT_HI);
  v.setUint32(4, LIBXL_IDENT_LO);
  v.setUint32(8, LIBXL_VERSION);
  v.setUint32(12, 0);
  return out;
}

export function encodeLibxlRecord(type: number): Uint8Array {
  return encodeRecord(type, new Uint8Array(0));
}

/**
 * libxl's EMULATOR_CONTEXT record: u32 emulator id, u32 index (which of the domain's emulators),
 * then the emulator's own state, padded to 8 bytes like every record.
 */
export function encodeEmulatorContext(id: number, index: number, data: Uint8Array): Uint8Array {
  if (data.length > EMULATOR_CONTEXT_MAX) throw new RangeError(`emulator state of ${data.length} bytes is too long`);
  const body = new Uint8Array(8 + data.length);
  const v = new DataView(body.buffer);
  v.setUint32(0, id, true);
  v.setUint32(4, index, true);
  body.set(data, 8);
  return encodeRecord(LibxlRec.EMULATOR_CONTEXT, body);
}

const fail = (msg: string): never => {
  throw new MigrationStreamError(msg);
};

export type OuterItem =
  | { readonly kind: "config"; readonly json: string }
  /** The hypervisor's stream starts: feed it the bytes from here. */
  | { readonly kind: "libxc" }
  /** A device model's state (EMULATOR_CONTEXT), after the hypervisor's stream. */
  | { readonly kind: "emulator"; readonly id: number; readonly index: number; readonly data: Uint8Array }
  | { readonly kind: "end" };

/**
 * Incremental parser of the outer layers. It stops at LIBXC_CONTEXT (the caller hands the
 * following bytes to the inner stream and gives back what followed its END with resume()), and
 * at libxl's END. `xlHeader` false: a bare libxl stream (live migration sends no xl header).
 */
export class OuterReader {
  private buf: Uint8Array = new Uint8Array(0);
  private state: "xl" | "libxl" | "records" | "inner" | "done";
  private offset = 0;
  private sawLibxc = false;

  constructor(xlHeader = true) {
    this.state = xlHeader ? "xl" : "libxl";
  }

  get done(): boolean {
    return this.state === "done";
  }

  /** Bytes given to push() that belong to the inner stream (after a "libxc" item). */
  takeRest(): Uint8Array {
    const r = this.buf;
    this.buf = new Uint8Array(0);
    return r;
  }

  /** The inner stream ended; `rest` followed its END. */
  resume(rest: Uint8Array): OuterItem[] {
    if (this.state !== "inner") fail("resume without an inner stream");
    this.state = "records";
    return this.push(rest);
  }

  push(chunk: Uint8Array): OuterItem[] {
    if (this.state === "done" && chunk.length > 0) fail(`${chunk.length} bytes after libxl's END record`);
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    this.buf = joined;
    const out: OuterItem[] = [];
    for (;;) {
      const b = this.buf;
      const v = new DataView(b.buffer, b.byteOffset, b.length);
      if (this.state === "xl") {
        if (b.length < XL_HEADER_SIZE) break;
        for (let i = 0; i < XL_MAGIC.length; i++) if (b[i] !== XL_MAGIC[i]) fail("not an xl save file (bad magic)");
        const bo = v.getUint32(32, true);
        if (bo !== XL_BYTEORDER) fail(`save file byte order 0x${bo.toString(16)} is not this host's`);
        const mand = v.getUint32(36, true);
        if ((mand & ~(XL_MANDATORY_CONFIG_JSON | XL_MANDATORY_STREAM_V2)) !== 0)
          fail(`save file has unknown mandatory flags 0x${mand.toString(16)}`);
        if ((mand & XL_MANDATORY_STREAM_V2) === 0) fail("save file is a legacy (pre-v2) stream");
        if ((mand & XL_MANDATORY_CONFIG_JSON) === 0) fail("save file config is not JSON");
        const optLen = v.getUint32(44, true);
        if (optLen < 4 || optLen > XL_CONFIG_MAX + 4) fail(`save file optional data of ${optLen} bytes`);
        if (b.length < XL_HEADER_SIZE + optLen) break;
        const cfgLen = v.getUint32(48, true);
        if (cfgLen + 4 > optLen) fail(`config of ${cfgLen} bytes does not fit the ${optLen}-byte optional data`);
        let json: string;
        try {
          json = new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(52, 52 + cfgLen));
        } catch {
          return fail("save file config is not UTF-8");
        }
        out.push({ kind: "config", json });
        this.consume(XL_HEADER_SIZE + optLen);
        this.state = "libxl";
        continue;
      }
      if (this.state === "libxl") {
        if (b.length < LIBXL_HEADER_SIZE) break;
        if (v.getUint32(0) !== LIBXL_IDENT_HI || v.getUint32(4) !== LIBXL_IDENT_LO)
          fail("no libxl stream header (LibxlFmt)");
        const ver = v.getUint32(8);
        if (ver !== LIBXL_VERSION) fail(`libxl stream version ${ver} not supported`);
        const opt = v.getUint32(12);
        if (opt !== 0)
          fail(`libxl stream options 0x${opt.toString(16)} not supported (big-endian or legacy-converted)`);
        this.consume(LIBXL_HEADER_SIZE);
        this.state = "records";
        continue;
      }
      if (this.state === "records") {
        if (b.length < 8) break;
        const type = v.getUint32(0, true);
        const len = v.getUint32(4, true);
        if (type === LibxlRec.END || type === LibxlRec.LIBXC_CONTEXT) {
          if (len !== 0) fail(`libxl record ${type} at offset ${this.offset} has a ${len}-byte body`);
          this.consume(8);
          if (type === LibxlRec.END) {
            this.state = "done";
            if (this.buf.length > 0) fail(`${this.buf.length} bytes after libxl's END record`);
            out.push({ kind: "end" });
            break;
          }
          this.state = "inner";
          this.sawLibxc = true;
          out.push({ kind: "libxc" });
          break;
        }
        if (type === LibxlRec.EMULATOR_CONTEXT) {
          if (!this.sawLibxc) fail(`EMULATOR_CONTEXT at offset ${this.offset} before the domain's LIBXC_CONTEXT`);
          if (len < 8 || len > 8 + EMULATOR_CONTEXT_MAX)
            fail(`EMULATOR_CONTEXT at offset ${this.offset} has a ${len}-byte body`);
          const total = 8 + len + ((8 - (len % 8)) % 8);
          if (b.length < total) break;
          out.push({
            kind: "emulator",
            id: v.getUint32(8, true),
            index: v.getUint32(12, true),
            data: b.slice(16, 8 + len),
          });
          this.consume(total);
          continue;
        }
        if ((type & 0x80000000) === 0) fail(`libxl record type ${type} at offset ${this.offset} not supported`);
        if (len > 1 << 20) fail(`optional libxl record of ${len} bytes`);
        const total = 8 + len + ((8 - (len % 8)) % 8);
        if (b.length < total) break;
        this.consume(total);
        continue;
      }
      break;
    }
    return out;
  }

  /** Throws unless the outer stream is complete. */
  finish(): void {
    if (this.state !== "done") fail(`save stream truncated at offset ${this.offset + this.buf.length} (${this.state})`);
  }

  private consume(n: number): void {
    this.buf = this.buf.slice(n);
    this.offset += n;
  }
}
