/**
 * Errors raised by the FDT reader, writer and tree helpers. Every failure is an `FdtError` whose
 * `code` is one of the stable strings below (named after libfdt's FDT_ERR_* where one fits), so
 * callers and tests can branch on the code rather than on message text.
 */
export const FDT_ERROR_CODES = [
  /** The blob ends before something it describes (header, totalsize, a token, a name, a value). */
  "FDT_ERR_TRUNCATED",
  /** The first word is not 0xd00dfeed. */
  "FDT_ERR_BADMAGIC",
  /** The version is older than 16, or last_comp_version is newer than 17. */
  "FDT_ERR_BADVERSION",
  /** A header offset/size, or a property's string offset, points outside its region. */
  "FDT_ERR_BADOFFSET",
  /** Blocks overlap each other or the header, or totalsize is smaller than the header. */
  "FDT_ERR_BADLAYOUT",
  /** A block offset lacks the alignment the format requires (rsvmap 8, struct 4). */
  "FDT_ERR_ALIGNMENT",
  /** Bad token sequence: unknown token, unbalanced nodes, property outside or after children, no FDT_END. */
  "FDT_ERR_BADSTRUCTURE",
  /** Nodes nested deeper than the reader's limit. */
  "FDT_ERR_TOODEEP",
  /** An empty, slash-containing or otherwise unusable node or property name. */
  "FDT_ERR_BADNAME",
  /** Two properties or two sibling nodes with the same name. */
  "FDT_ERR_EXISTS",
  /** A property value of the wrong length or form for the accessor used, or an unencodable value. */
  "FDT_ERR_BADVALUE",
  /** #address-cells / #size-cells outside the supported range. */
  "FDT_ERR_BADNCELLS",
  /** A malformed path (or unknown alias). */
  "FDT_ERR_BADPATH",
  /** A phandle that is 0, 0xffffffff, duplicated, or refers to no node. */
  "FDT_ERR_BADPHANDLE",
  /** A node or property that was required is absent. */
  "FDT_ERR_NOTFOUND",
  /** A bug in this module surfaced while reading (should never be seen). */
  "FDT_ERR_INTERNAL",
] as const;

export type FdtErrorCode = (typeof FDT_ERROR_CODES)[number];

export class FdtError extends Error {
  override readonly name = "FdtError";

  /**
   * @param code stable error code
   * @param detail human-readable explanation
   * @param offset byte offset in the blob where the problem was found, when there is one
   */
  constructor(
    readonly code: FdtErrorCode,
    detail: string,
    readonly offset?: number,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${detail}${offset === undefined ? "" : ` (at byte ${offset})`}`, options);
  }
}
