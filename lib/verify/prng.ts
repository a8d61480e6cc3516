/**
 * The seeded generator behind every golden input, written down so that any language can reproduce it
 * (32-bit unsigned arithmetic throughout):
 *   state = (state + 0x9E3779B9) mod 2^32
 *   z = state; z = (z ^ (z >> 16)) * 0x85EBCA6B; z = (z ^ (z >> 13)) * 0xC2B2AE35; z = z ^ (z >> 16)
 * (each product mod 2^32) and z is the next output.
 */
export class Prng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** Uniform integer in [0, n) (n < 2^32): next() mod n. */
  below(n: number): number {
    return this.next() % n;
  }
}
