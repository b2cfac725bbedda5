/** @xenon/toolstack — public face. */
export {};
