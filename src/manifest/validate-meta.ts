// validate-meta.ts — ObjectMeta as the API server validates it (apimachinery ValidateObjectMeta), and label maps.
import { isPlainObject, type FieldPath, type ManifestObject } from './documents.js';
import { fieldError, isDNS1123Label, isLabelValue, isQualifiedName } from './k8s-rules.js';

/** Report records one field error: where it stands in the manifest, and its message after `The Kind "name" is invalid: `. */
export type Report = (path: FieldPath, message: string, key?: boolean) => void;

/** NameRule is a kind's name rule (DNS-1035 label for a Service, DNS-1123 subdomain for most others). */
export type NameRule = (name: string) => string[];

// apimachinery's TotalAnnotationSizeLimitB.
const ANNOTATIONS_LIMIT = 256 * 1024;

/** validateLabels is ValidateLabels: each key a qualified name and each value a label value, reported at the map. */
export function validateLabels(labels: Record<string, string>, path: FieldPath, field: string, report: Report): void {
  for (const [k, v] of Object.entries(labels)) {
    for (const msg of isQualifiedName(k)) report([...path, k], fieldError.invalid(field, k, msg), true);
    for (const msg of isLabelValue(String(v))) report([...path, k], fieldError.invalid(field, String(v), msg));
  }
}

/** validateObjectMeta is ValidateObjectMeta for a namespaced object: generateName, name, namespace, labels, annotations. */
export function validateObjectMeta(obj: ManifestObject, nameRule: NameRule, report: Report): void {
  const meta = isPlainObject(obj.data.metadata) ? obj.data.metadata : {};
  const generateName = typeof meta.generateName === 'string' ? meta.generateName : '';
  if (generateName !== '') {
    // maskTrailingDash: a generated name gets a suffix, so a trailing dash is allowed (the API server drops it and the
    // character before it, and puts an 'a' there).
    const masked = generateName.length > 1 && generateName.endsWith('-') ? `${generateName.slice(0, -2)}a` : generateName;
    for (const msg of nameRule(masked)) report(['metadata', 'generateName'], fieldError.invalid('metadata.generateName', generateName, msg));
  }
  const name = typeof meta.name === 'string' ? meta.name : '';
  if (name === '') report(['metadata'], fieldError.required('metadata.name', 'name or generateName is required'));
  else for (const msg of nameRule(name)) report(['metadata', 'name'], fieldError.invalid('metadata.name', name, msg));
  const ns = typeof meta.namespace === 'string' ? meta.namespace : '';
  // kubectl fills in the namespace when it is left out; one that is given must be a DNS label.
  if (ns !== '') for (const msg of isDNS1123Label(ns)) report(['metadata', 'namespace'], fieldError.invalid('metadata.namespace', ns, msg));
  if (isPlainObject(meta.labels)) validateLabels(meta.labels as Record<string, string>, ['metadata', 'labels'], 'metadata.labels', report);
  if (isPlainObject(meta.annotations)) {
    let size = 0;
    for (const [k, v] of Object.entries(meta.annotations)) {
      // The rule is a qualified name, except that case does not matter.
      for (const msg of isQualifiedName(k.toLowerCase())) report(['metadata', 'annotations', k], fieldError.invalid('metadata.annotations', k, msg), true);
      size += Buffer.byteLength(k) + Buffer.byteLength(String(v ?? ''));
    }
    if (size > ANNOTATIONS_LIMIT) report(['metadata', 'annotations'], fieldError.tooLong('metadata.annotations', ANNOTATIONS_LIMIT));
  }
}
