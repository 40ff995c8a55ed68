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

/** MAX_DOCUMENT_BYTES is the API server's request body limit: an object larger than this could never be applied. */
export const MAX_DOCUMENT_BYTES = 3 * 1024 * 1024;

interface DocumentText {
  text: string;
  /** line is where the document starts in its file (1-based). */
  line: number;
}

/** splitDocuments cuts a file at its `---` lines; a document's positions then come from parsing it alone. */
function splitDocuments(text: string): DocumentText[] {
  const out: DocumentText[] = [];
  const marker = /^---(?=[ \t]|$)/gm;
  let start = 0;
  let line = 1;
  let m: RegExpExecArray | null;
  while ((m = marker.exec(text))) {
    if (m.index > 0) {
      out.push({ text: text.slice(start, m.index), line });
      line += countLines(text, start, m.index);
      start = m.index;
    }
  }
  out.push({ text: text.slice(start), line });
  // Comments before the first `---` are no document of their own.
  const bare = (t: string) => t.replace(/#[^\n]*/g, '').trim() === '';
  return out.length > 1 && bare(out[0]!.text) ? out.slice(1) : out;
}

function countLines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * parseSource reads one file. The fast path is js-yaml (about ten times faster on large manifests); positions come
 * from the `yaml` package only when something asks for one (an error, a warning), parsed for that document alone. A
 * file js-yaml rejects is parsed with `yaml` at once, whose errors carry line and column. A document larger than the
 * API server accepts is refused before any parsing, and so is one whose aliases would expand it past reason.
 */
function parseSource(source: Source): ParsedDocuments {
  const documents = splitDocuments(source.text);
  const tooLarge = documents.filter((d) => Buffer.byteLength(d.text) > MAX_DOCUMENT_BYTES);
  if (tooLarge.length > 0) {
    const problems = tooLarge.map((d) => ({ where: `${source.file}:${d.line}:1`, message: `Request entity too large: limit is ${MAX_DOCUMENT_BYTES} (this document is ${Buffer.byteLength(d.text)} bytes; the API server refuses any object this large)` }));
    return { objects: [], problems, emptySources: [] };
  }
  let values: unknown[] | undefined;
  try {
    values = jsyaml.loadAll(source.text) as unknown[];
  } catch {
    values = undefined;
  }
  if (!values) return parseWithPositions(source);
  // js-yaml keeps an alias as a second reference to one object; walking it would expand it (a "billion laughs").
  const bombs = values.flatMap((v, i) => (excessiveAliasing(v) ? [i] : []));
  if (bombs.length > 0) {
    const startLine = (i: number) => (documents.length === values!.length ? documents[i]!.line : 1);
    return { objects: [], problems: bombs.map((i) => ({ where: `${source.file}:${startLine(i)}:1`, message: 'error converting YAML to JSON: yaml: document contains excessive aliasing' })), emptySources: [] };
  }
  const locateIn =
    (doc: number): Locate =>
    (path, key) =>
      positionsOf(source, documents.length === values!.length ? documents[doc] : undefined, doc)(path, key);
  return collect(source.file, values.map((value, i) => ({ value, locate: locateIn(i), empty: value === null || value === undefined })), []);
}

// positionsOf caches the last document parsed for positions: validation asks for many positions in one document.
let lastPositions: { text: string; file: string; locate: Locate } | undefined;

/**
 * positionsOf parses one document with `yaml` for positions only. Given the document's own text, only it is parsed
 * (an error in a 50 MB file costs the parse of its document); otherwise the file is, and the index picks it.
 */
function positionsOf(source: Source, document: DocumentText | undefined, index: number): Locate {
  const text = document?.text ?? source.text;
  if (lastPositions?.text === text && lastPositions.file === source.file) return lastPositions.locate;
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter });
  const list = Array.isArray(docs) ? docs : [];
  const doc = document ? list.find((d) => d.contents !== null) ?? list[0] : list[index];
  const locate = doc ? locator(source.file, doc, lineCounter, (document?.line ?? 1) - 1) : () => `${source.file}:${document?.line ?? 1}:1`;
  lastPositions = { text, file: source.file, locate };
  return locate;
}

/**
 * excessiveAliasing is go-yaml's rule (sigs.k8s.io/yaml decodes with it): past 100 aliased nodes and 1,000 nodes in
 * all, the share of nodes that come from alias expansion may not pass 99% (falling to 10% for very large documents).
 * The walk stops as soon as the rule is broken, so an alias bomb costs a few thousand steps.
 */
export function excessiveAliasing(root: unknown): boolean {
  const seen = new Set<object>();
  let decoded = 0;
  let aliased = 0;
  const stack: [unknown, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [value, inAlias] = stack.pop()!;
    decoded++;
    if (inAlias) aliased++;
    if (aliased > 100 && decoded > 1000 && aliased / decoded > allowedAliasRatio(decoded)) return true;
    if (typeof value !== 'object' || value === null) continue;
    const again = seen.has(value);
    seen.add(value);
    const children = Array.isArray(value) ? value : Object.values(value);
    for (const child of children) stack.push([child, inAlias || again]);
  }
  return false;
}

function allowedAliasRatio(decoded: number): number {
  const low = 400_000;
  const high = 4_000_000;
  if (decoded <= low) return 0.99;
  if (decoded >= high) return 0.1;
  return 0.99 - 0.89 * ((decoded - low) / (high - low));
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
    let value: unknown = null;
    try {
      value = empty ? null : doc.toJS({ maxAliasCount: 100 });
    } catch {
      // `yaml` refuses alias expansion past its count, as go-yaml refuses excessive aliasing.
      problems.push({ where: locator(source.file, doc, lineCounter)([]), message: 'error converting YAML to JSON: yaml: document contains excessive aliasing' });
      continue;
    }
    entries.push({ value, locate: locator(source.file, doc, lineCounter), empty });
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
function locator(file: string, doc: Document, lineCounter: LineCounter, lineOffset = 0): Locate {
  const at = (node: unknown): string | undefined => {
    if (!node || typeof node !== 'object' || !('range' in node) || !node.range) return undefined;
    const pos = lineCounter.linePos((node as Node).range![0]);
    return `${file}:${pos.line + lineOffset}:${pos.col}`;
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
    return `${file}:${1 + lineOffset}:1`;
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
