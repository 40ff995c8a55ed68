// names.ts — pod names the way controllers make them (my-app-7c5d9b8f4-x2kqz), but stable from run to run.

// The controllers' safe alphabet: no vowels, no 0/1/3, so names never spell words or look alike.
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function encode(seed: string, length: number): string {
  let out = '';
  let h = fnv1a(seed);
  for (let i = 0; i < length; i++) {
    if (i % 5 === 4) h = fnv1a(`${seed}:${i}:${h}`);
    out += ALPHABET[h % ALPHABET.length];
    h = Math.floor(h / ALPHABET.length);
  }
  return out;
}

/** podName returns the name the workload's controller would give replica i. */
export function podName(kind: string, workload: string, templateHash: string, i: number): string {
  switch (kind) {
    case 'Pod':
      return workload;
    case 'StatefulSet':
      return `${workload}-${i}`;
    case 'ReplicaSet':
      return `${workload}-${encode(`${workload}/${i}`, 5)}`;
    default:
      return `${workload}-${encode(templateHash, 9)}-${encode(`${workload}/${templateHash}/${i}`, 5)}`;
  }
}

/** templateHash is pod-template-hash: it changes when the pod template changes, like a Deployment's rollout. */
export function templateHash(template: unknown): string {
  return String(fnv1a(JSON.stringify(template ?? null)));
}
