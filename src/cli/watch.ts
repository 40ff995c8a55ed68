// watch.ts — --watch: watch the manifests' directories (editors save by rename), debounce, and call reload once.
import { statSync, watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';

const DEBOUNCE_MS = 150;
/** REWATCH_MS is how often a vanished directory is looked for again. */
const REWATCH_MS = 250;

/**
 * watchManifests calls onChange after edits settle; edits during a reload coalesce into one more reload. It returns
 * once every directory is watched, so an edit made after `ready:` is never missed.
 */
export async function watchManifests(files: string[], onChange: () => Promise<void>): Promise<() => void> {
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
  let stopped = false;
  /**
   * watchDir watches one directory. When the directory itself goes away (deleted, or replaced by a rename as some
   * tools deploy), fs.watch stops for good: then it waits for a directory of that name to come back, watches it again,
   * and reloads.
   */
  const watchDir = (dir: string, matches: (name: string) => boolean) => {
    if (stopped) return;
    let w: FSWatcher;
    let inode: number | undefined;
    try {
      inode = statSync(dir).ino;
    } catch {
      // not there (yet): the watch below fails too, and is tried again
    }
    try {
      w = watch(dir, (_event, name) => {
        if (matches(String(name))) schedule();
      });
    } catch {
      return void setTimeout(() => watchDir(dir, matches), REWATCH_MS).unref();
    }
    watchers.push(w);
    let gone = false;
    const rewatch = () => {
      if (gone) return;
      gone = true;
      w.close();
      watchers.splice(watchers.indexOf(w), 1);
      const retry = () => {
        if (stopped) return;
        void stat(dir).then(
          (info) => {
            if (!info.isDirectory()) return void setTimeout(retry, REWATCH_MS).unref();
            watchDir(dir, matches);
            schedule();
          },
          () => void setTimeout(retry, REWATCH_MS).unref(),
        );
      };
      setTimeout(retry, REWATCH_MS).unref();
    };
    w.on('error', rewatch);
    // A deleted or replaced directory reports a rename under its own name (inotify's IN_DELETE_SELF): that watcher is
    // dead even when a new directory of that name already stands there, often with the same inode number (ext4 reuses
    // it at once). Any other rename: check that the same directory is still there.
    w.on('change', (event, name) => {
      if (event !== 'rename') return;
      if (String(name) === path.basename(dir)) return void w.emit('error', new Error('gone'));
      void stat(dir).then(
        (info) => {
          if (inode !== undefined && info.ino !== inode) w.emit('error', new Error('replaced'));
        },
        () => w.emit('error', new Error('gone')),
      );
    });
  };
  for (const f of files) {
    if (f === '-') continue;
    const isDir = (await stat(f).catch(() => undefined))?.isDirectory() ?? false;
    const dir = isDir ? f : path.dirname(f);
    const base = isDir ? undefined : path.basename(f);
    watchDir(dir, (name) => (base === undefined ? /\.(ya?ml|json)$/.test(name) : name === base));
  }
  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
