/** @xenon/backends — public face. */
export {};
