import { Errno } from "@xenon/hypervisor";

/** strerror() text for the errnos the core returns (glibc's wording, as xl prints it). */
const STRERROR: Partial<Record<number, string>> = {
  [Errno.EPERM]: "Operation not permitted",
  [Errno.ENOENT]: "No such file or directory",
  [Errno.ESRCH]: "No such process",
  [Errno.EINTR]: "Interrupted system call",
  [Errno.EIO]: "Input/output error",
  [Errno.E2BIG]: "Argument list too long",
  [Errno.EAGAIN]: "Resource temporarily unavailable",
  [Errno.ENOMEM]: "Cannot allocate memory",
  [Errno.EFAULT]: "Bad address",
  [Errno.EBUSY]: "Device or resource busy",
  [Errno.EEXIST]: "File exists",
  [Errno.EINVAL]: "Invalid argument",
  [Errno.ENOSPC]: "No space left on device",
  [Errno.ERANGE]: "Numerical result out of range",
  [Errno.ENOSYS]: "Function not implemented",
  [Errno.EOVERFLOW]: "Value too large for defined data type",
};

export function strerror(errno: number): string {
  const e = Math.abs(errno);
  return STRERROR[e] ?? `Unknown error ${e}`;
}

/** The symbolic name of a Xen errno ("ESRCH"), or "E<n>". */
export function errnoName(errno: number): string {
  const e = Math.abs(errno);
  for (const [k, v] of Object.entries(Errno)) if (v === e) return k;
  return `E${e}`;
}

/**
 * A toolstack failure. `code` is the errno name ("ESRCH") or a libxl-style class ("EINVAL" for
 * a bad config); the message is what xl prints after "libxl: error: ".
 */
export class LibxlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "LibxlError";
  }

  /** From a negative errno returned by a hypercall: "<what>: <strerror>". */
  static fromErrno(rc: number, what: string): LibxlError {
    return new LibxlError(errnoName(rc), `${what}: ${strerror(rc)}`);
  }
}

/** Throws LibxlError for a negative return code; passes anything else through. */
export function check<T>(rc: T | number, what: string): T {
  if (typeof rc === "number" && rc < 0) throw LibxlError.fromErrno(rc, what);
  return rc as T;
}
