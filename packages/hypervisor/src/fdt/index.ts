/** Flattened device tree (DTB) reader and writer; see README.md. */
export * from "./constants.js";
export { FDT_ERROR_CODES, FdtError, type FdtErrorCode } from "./errors.js";
export { type FdtHeaderInfo, type ReadOptions, type ReadResult, readFdt, readFdtWithHeader } from "./reader.js";
export { checkNodeName, checkPropertyName, Fdt, FdtNode, type MemoryReservation, type WalkEntry } from "./tree.js";
export * from "./values.js";
export { writeFdt } from "./writer.js";
