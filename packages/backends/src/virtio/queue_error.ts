/**
 * A guest broke a virtqueue rule (virtio.md §8): the device stops, sets DEVICE_NEEDS_RESET and
 * raises a config interrupt; the log line names the guest, the device, the queue and the rule.
 */
export type QueueRule =
  | "queue-size"
  | "queue-not-ready"
  | "ring-alignment"
  | "ring-unreachable"
  | "avail-index-jump"
  | "head-out-of-range"
  | "next-out-of-range"
  | "chain-too-long"
  | "unknown-flags"
  | "indirect-not-negotiated"
  | "nested-indirect"
  | "indirect-with-next"
  | "indirect-table-size"
  | "indirect-unreachable"
  | "readable-after-writable"
  | "length-overflow"
  | "buffer-unreachable"
  | "write-to-readable-buffer"
  | "read-from-writable-buffer"
  | "request-malformed"
  | "too-many-in-flight";

/**
 * The guest domain is gone (a grant operation answered GNTST_bad_domain): not a broken rule, just
 * the end of the device's work; the transport stops quietly.
 */
export class GuestGoneError extends Error {
  constructor(readonly guest: number) {
    super(`guest d${guest} is gone`);
    this.name = "GuestGoneError";
  }
}

export class QueueError extends Error {
  constructor(
    readonly rule: QueueRule,
    readonly detail: string,
  ) {
    super(`${rule}: ${detail}`);
    this.name = "QueueError";
  }
}
