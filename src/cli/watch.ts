// watch.ts — --watch: watch the manifests' directories (editors save by rename), debounce, and call reload once.
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';

const DEBOUNCE_MS = 150;

/** watchManifests calls onChange after edits settle; edits during a reload coalesce into one more reload. */
export function watchManifests(files: string[], onChange: () => Promise<void>): () => void {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  const fire = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await onChange();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void fire(), DEBOUNCE_MS);
  };
  void (async () => {
    for (const f of files) {
      if (f === '-') continue;
      const isDir = (await stat(f).catch(() => undefined))?.isDirectory() ?? false;
      const dir = isDir ? f : path.dirname(f);
      const base = isDir ? undefined : path.basename(f);
      const w = watch(dir, (_event, name) => {
        if (base === undefined ? /\.(ya?ml|json)$/.test(String(name)) : String(name) === base) schedule();
      });
      w.on('error', () => {});
      watchers.push(w);
    }
  })();
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
