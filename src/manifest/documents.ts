// documents.ts — YAML/JSON text → Kubernetes objects that remember where each field stands (file:line:col).
import * as jsyaml from 'js-yaml';
import { LineCounter, isMap, isScalar, parseAllDocuments, type Document, type Node, type YAMLError } from 'yaml';
import type { Source } from './sources.js';
import { problemAt, type Problem } from './problems.js';

export type FieldPath = (string | number)[];

/** ManifestObject is one Kubernetes object as plain data, plus a way back to its position in the file. */
export interface ManifestObject {
  file: string;
  kind: string;
  apiVersion: string;
  name: string;
  namespace: string;
  data: Record<string, unknown>;
  /** at returns `file:line:col` of the field at path (relative to the object), or of its nearest present parent. */
  at(path: FieldPath): string;
  /** atKey is `at` for the field's key rather than its value: where an unknown field is named. */
  atKey(path: FieldPath): string;
}

type Locate = (path: FieldPath, key?: boolean) => string;

export interface ParsedDocuments {
  objects: ManifestObject[];
  problems: Problem[];
  /** emptySources lists files that held no object at all. */
  emptySources: string[];
}

// The last parse of each file, by its text: a reload re-parses only the files that changed (YAML parsing dominates).
const lastParse = new Map<string, { text: string; result: ParsedDocuments }>();
const MAX_CACHED_FILES = 10_000;

/** parseDocuments splits every source into objects, unwrapping `kind: List` as `kubectl get -o yaml` writes it. */
export function parseDocuments(sources: Source[]): ParsedDocuments {
  const all: ParsedDocuments = { objects: [], problems: [], emptySources: [] };
  for (const source of sources) {
    const cached = lastParse.get(source.file);
    let result: ParsedDocuments;
    if (cached && cached.text === source.text) result = cached.result;
    else {
      result = parseSource(source);
      if (lastParse.size >= MAX_CACHED_FILES) lastParse.clear();
      lastParse.set(source.file, { text: source.text, result });
    }
    all.objects.push(...result.objects);
    all.problems.push(...result.problems);
    all.emptySources.push(...result.emptySources);
  }
  return all;
}

/**
 * parseSource reads one file. The fast path is js-yaml (about ten times faster on large manifests); positions come
 * from the `yaml` package only when something asks for one (an error, a warning), parsed once per file. A file
 * js-yaml rejects is parsed with `yaml` at once, whose errors carry line and column.
 */
function parseSource(source: Source): ParsedDocuments {
  let values: unknown[] | undefined;
  try {
    values = jsyaml.loadAll(source.text) as unknown[];
  } catch {
    values = undefined;
  }
  if (!values) return parseWithPositions(source);
  let positioned: ((doc: number) => Locate) | undefined;
  const locateIn =
    (doc: number): Locate =>
    (path, key) => {
      positioned ??= positionsOf(source);
      return positioned(doc)(path, key);
    };
  return collect(source.file, values.map((value, i) => ({ value, locate: locateIn(i), empty: value === null || value === undefined })), []);
}

/** positionsOf parses a file with `yaml` for positions only, and returns a locator per document index. */
function positionsOf(source: Source): (doc: number) => Locate {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(source.text, { lineCounter });
  const list = Array.isArray(docs) ? docs : [];
  return (i) => {
    const doc = list[i];
    return doc ? locator(source.file, doc, lineCounter) : () => `${source.file}:1:1`;
  };
}

/** parseWithPositions is the `yaml` path: every document with its positions, every syntax error with its own. */
function parseWithPositions(source: Source): ParsedDocuments {
  const problems: Problem[] = [];
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(source.text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  const entries: DocEntry[] = [];
  let broken = false;
  for (const doc of list) {
    if (doc.errors.length > 0) {
      broken = true;
      problems.push(...yamlProblems(source, doc.errors));
      continue;
    }
    const empty = doc.contents === null || doc.contents === undefined;
    entries.push({ value: empty ? null : (doc.toJS({ maxAliasCount: 100 }) as unknown), locate: locator(source.file, doc, lineCounter), empty });
  }
  const result = collect(source.file, entries, problems);
  if (broken) result.emptySources.length = 0;
  return result;
}

interface DocEntry {
  value: unknown;
  locate: Locate;
  empty: boolean;
}

/** collect turns parsed documents into objects, unwrapping `kind: List` as `kubectl get -o yaml` writes it. */
function collect(file: string, entries: DocEntry[], problems: Problem[]): ParsedDocuments {
  const objects: ManifestObject[] = [];
  let found = 0;
  for (const { value, locate, empty } of entries) {
    if (empty) continue;
    if (!isPlainObject(value)) {
      problems.push({ where: locate([]), message: `error validating data: the document is a ${describe(value)}, not a Kubernetes object (a mapping with apiVersion and kind)` });
      continue;
    }
    if (value.kind === 'List' || (typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items))) {
      const items = Array.isArray(value.items) ? value.items : [];
      items.forEach((item, i) => {
        found++;
        const obj = toObject(file, item, ['items', i], locate);
        if (typeof obj === 'string') problems.push({ where: locate(['items', i]), message: obj });
        else objects.push(obj);
      });
      continue;
    }
    found++;
    const obj = toObject(file, value, [], locate);
    if (typeof obj === 'string') problems.push({ where: locate([]), message: obj });
    else objects.push(obj);
  }
  return { objects, problems, emptySources: found === 0 && problems.length === 0 ? [file] : [] };
}

function toObject(file: string, value: unknown, base: FieldPath, locate: Locate): ManifestObject | string {
  if (!isPlainObject(value)) return `error validating data: the item is a ${describe(value)}, not a Kubernetes object`;
  const missing: string[] = [];
  if (typeof value.apiVersion !== 'string' || value.apiVersion === '') missing.push('apiVersion not set');
  if (typeof value.kind !== 'string' || value.kind === '') missing.push('kind not set');
  if (missing.length > 0) return `error validating data: [${missing.join(', ')}]; if you choose to ignore these errors, turn validation off with --validate=false`;
  const metadata = isPlainObject(value.metadata) ? value.metadata : {};
  return {
    file,
    kind: value.kind as string,
    apiVersion: value.apiVersion as string,
    name: typeof metadata.name === 'string' ? metadata.name : '',
    namespace: typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default',
    data: value,
    at: (p: FieldPath) => locate([...base, ...p]),
    atKey: (p: FieldPath) => locate([...base, ...p], true),
  };
}

/** locator finds the closest node that exists on a path, so a missing field points at its parent. */
function locator(file: string, doc: Document, lineCounter: LineCounter): Locate {
  const at = (node: unknown): string | undefined => {
    if (!node || typeof node !== 'object' || !('range' in node) || !node.range) return undefined;
    const pos = lineCounter.linePos((node as Node).range![0]);
    return `${file}:${pos.line}:${pos.col}`;
  };
  return (path, key = false): string => {
    if (key && path.length > 0) {
      const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
      const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]) : undefined;
      const where = at(pair?.key);
      if (where) return where;
    }
    for (let n = path.length; n >= 0; n--) {
      const where = at(n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true));
      if (where) return where;
    }
    return `${file}:1:1`;
  };
}

/**
 * yamlProblems reports every duplicate key, but of the syntax errors only the first: one slip of indentation makes the
 * parser misread the lines after it, so the rest mostly repeat it (the seed's ports dedented by two gave nine), and
 * kubectl reports one too. That one comes with the lines around it and what to check.
 */
function yamlProblems(source: Source, errors: YAMLError[]): Problem[] {
  const at = (e: YAMLError) => e.linePos?.[0] ?? { line: 1, col: 1 };
  const before = (a: YAMLError, b: YAMLError) => at(a).line - at(b).line || at(a).col - at(b).col;
  const problem = (e: YAMLError) => problemAt(source.file, e.linePos?.[0], yamlMessage(e.code, e.message, source.text, e.linePos?.[0]));
  const duplicates = errors.filter((e) => e.code === 'DUPLICATE_KEY');
  const syntax = errors.filter((e) => e.code !== 'DUPLICATE_KEY').sort(before);
  const shown = [...duplicates, ...syntax.slice(0, 1)].sort(before);
  return shown.map((e) => {
    const p = problem(e);
    if (e !== syntax[0]) return p;
    const more = syntax.length - 1;
    p.context = [
      ...excerpt(source.text, at(e).line),
      e.code === 'TAB_AS_INDENT'
        ? 'hint: indent with spaces; YAML does not allow tabs there.'
        : 'hint: YAML nests by indentation. Start each key or "- " item in the same column as the others at its level, with spaces, and end each key with ":".',
      ...(more > 0 ? [`(${more} more YAML error${more === 1 ? '' : 's'} after this one in the same document, most likely caused by it, not shown)`] : []),
    ];
    return p;
  });
}

/** excerpt is the source from two lines before `line` to one after, numbered, with `line` marked and tabs made visible. */
function excerpt(text: string, line: number): string[] {
  const lines = text.split(/\r?\n/);
  const first = Math.max(1, line - 2);
  const last = Math.min(lines.length, line + 1);
  const width = String(last).length;
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    const src = (lines[n - 1] ?? '').replaceAll('\t', '→');
    if (n === last && n !== line && src.trim() === '') break;
    out.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${src}`.trimEnd());
  }
  return out;
}

/** yamlMessage words YAML errors as kubectl does where it has a wording (duplicate keys), else keeps the parser's. */
function yamlMessage(code: string, message: string, text: string, pos?: { line: number; col: number }): string {
  if (code === 'DUPLICATE_KEY' && pos) {
    const line = text.split(/\r?\n/)[pos.line - 1] ?? '';
    const key = /^\s*(?:-\s+)?("[^"]*"|'[^']*'|[^:#\s][^:#]*?)\s*:/.exec(line)?.[1]?.replace(/^["']|["']$/g, '');
    if (key) return `error converting YAML to JSON: yaml: unmarshal errors: line ${pos.line}: key "${key}" already set in map`;
  }
  const first = message.split('\n')[0] ?? message;
  return `error converting YAML to JSON: yaml: ${first.replace(/ at line \d+, column \d+:?$/, '')}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'mapping' : typeof v;
}
