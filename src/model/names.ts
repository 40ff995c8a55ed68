// names.ts — pod names and controller labels the way controllers make them (my-app-7c5d9b8f4-x2kqz), but stable
// from run to run.

// The controllers' safe alphabet (k8s.io/apimachinery/pkg/util/rand): no vowels, no 0/1/3, so names never spell words.
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** safeEncode is rand.SafeEncodeString: each character mapped into the safe alphabet by its code. */
function safeEncode(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) out += ALPHABET[text.charCodeAt(i) % ALPHABET.length];
  return out;
}

/** suffix is a controller's random five-character suffix, made stable: the same workload and replica give the same one. */
function suffix(seed: string): string {
  let out = '';
  let h = fnv1a(seed);
  for (let i = 0; i < 5; i++) {
    out += ALPHABET[h % ALPHABET.length];
    h = Math.floor(h / ALPHABET.length);
  }
  return out;
}

/** templateHash is pod-template-hash: the template's 32-bit hash, safe-encoded, so it changes when the template does. */
export function templateHash(template: unknown): string {
  return safeEncode(String(fnv1a(JSON.stringify(template ?? null))));
}

/** podName returns the name the workload's controller would give replica i. */
export function podName(kind: string, workload: string, hash: string, i: number): string {
  switch (kind) {
    case 'Pod':
      return workload;
    case 'StatefulSet':
      return `${workload}-${i}`;
    case 'Deployment':
      // The Deployment's ReplicaSet is named <deployment>-<pod-template-hash>, and its pods after it.
      return `${workload}-${hash}-${suffix(`${workload}/${hash}/${i}`)}`;
    default:
      return `${workload}-${suffix(`${workload}/${i}`)}`;
  }
}

/** controllerLabels are the labels a workload's controller adds to the pods it makes, next to the template's own. */
export function controllerLabels(kind: string, workload: string, hash: string, i: number, name: string): Record<string, string> {
  switch (kind) {
    case 'Deployment':
      return { 'pod-template-hash': hash };
    case 'StatefulSet':
      return { 'apps.kubernetes.io/pod-index': String(i), 'controller-revision-hash': `${workload}-${hash}`, 'statefulset.kubernetes.io/pod-name': name };
    case 'DaemonSet':
      return { 'controller-revision-hash': hash, 'pod-template-generation': '1' };
    default:
      return {};
  }
}
