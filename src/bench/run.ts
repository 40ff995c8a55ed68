// run.ts — `portlab bench` entry point (the benchmark is built in src/bench/).
import type { Options } from '../cli/options.js';

export async function runBench(_options: Options): Promise<number> {
  process.stderr.write('portlab bench: not built yet\n');
  return 2;
}
