// The scale script runs end to end on a small cluster and reports every figure it promises.
import { readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { ROOT, tempManifest } from './helpers/portlab.js';

test('scripts/scale.ts reports time to ready, RSS and a one-Service resync that opens and closes only that Service\'s listener', async (t) => {
  const out = await tempManifest('', 'scale.json');
  try {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'dist/scripts/scale.js'), '--services', '40', '--json', out.file], { encoding: 'utf8', timeout: 60_000 });
    t.is(run.status, 0, run.stderr);
    const report = JSON.parse(await readFile(out.file, 'utf8')) as { listeners: number; pods: number; readyMs: number; rssMiB: number; resyncs: { syncMs: number; opened: number; closed: number }[] };
    t.is(report.listeners, 160);
    t.is(report.pods, 80);
    t.true(report.readyMs > 0 && report.rssMiB > 0);
    // Rounds alternate: svc-7's http port moves 8080 → 9090 and back; each round swaps exactly one listener.
    for (const r of report.resyncs) {
      t.is(r.opened, 1);
      t.is(r.closed, 1);
      t.true(r.syncMs > 0);
    }
  } finally {
    await out.cleanup();
  }
});
