/** @xenon/guests — public face. */
export {};
