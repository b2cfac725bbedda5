/** @xenon/hypervisor — public face. */
export {};
