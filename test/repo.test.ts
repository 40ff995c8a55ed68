// The repository stands alone and reads as a product: no references to files outside it, no development diary,
// a README a user can read, and links in the docs that resolve.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { ROOT } from './helpers/portlab.js';

const SKIP = new Set(['node_modules', 'dist', '.git', 'artifacts']);
const TEXT = /\.(ts|mjs|js|json|md|ya?ml|html|sh)$|^run$/;
const SELF = path.join('test', 'repo.test.ts');

function files(dir = ROOT): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...files(full));
    else if (TEXT.test(name) && name !== 'package-lock.json') out.push(path.relative(ROOT, full));
  }
  return out;
}

// Built from parts so this file does not match itself.
const OUTSIDE = [['..', '/shared'], ['shared', '/seed/'], ['PRODUCT', '.md'], ['PITFALLS', '.md'], ['EXAMPLES', '.md']].map((p) => p.join(''));
const DIARY = [/\bsession\s[0-9]/i, /\bthis\ssession\b/i, /\bin\ssession\b/i, /\btried and dropped\b/i, /\bsession log\b/i, /\bdevelopment diary\b/i];

test('nothing in the repository refers to files outside it', (t) => {
  const all = files();
  t.true(all.length > 50, `walked ${all.length} files`);
  const hits = all.filter((f) => f !== SELF).flatMap((f) => {
    const text = readFileSync(path.join(ROOT, f), 'utf8');
    return OUTSIDE.filter((word) => text.includes(word)).map((word) => `${f}: ${word}`);
  });
  t.deepEqual(hits, []);
});

test('nothing in the repository narrates how it was developed', (t) => {
  const hits = files()
    .filter((f) => f !== SELF)
    .flatMap((f) => {
      const lines = readFileSync(path.join(ROOT, f), 'utf8').split('\n');
      return lines.flatMap((line, i) => DIARY.filter((re) => re.test(line)).map((re) => `${f}:${i + 1}: ${re}`));
    });
  t.deepEqual(hits, []);
});

test('the README is a guide of under 300 lines, with the two set-up commands', (t) => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  t.true(readme.split('\n').length < 300, `${readme.split('\n').length} lines`);
  t.true(readme.includes('npm install && npm start'));
  t.true(readme.includes('npm ci && npm test'));
});

test('every relative link in README.md and docs/ points at a file that exists', (t) => {
  const pages = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages) {
    const text = readFileSync(path.join(ROOT, page), 'utf8');
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      checked++;
      if (!existsSync(path.join(ROOT, path.dirname(page), target))) broken.push(`${page}: ${target}`);
    }
  }
  t.true(checked > 10, `checked ${checked} links`);
  t.deepEqual(broken, []);
});
