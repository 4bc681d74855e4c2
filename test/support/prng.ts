/** One seeded generator for the tests and the pilot fixture: mulberry32, the same sequence on every machine. */
export { random as prng } from '../../fixtures/stages/generate.mjs';
