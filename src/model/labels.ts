// labels.ts — label selectors: matching, an index that keeps selection linear in the cluster's size, and printing.

export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/**
 * LabelIndex finds the objects a selector matches without scanning them all: it looks up the selector's first
 * label in an index of namespace/key=value, then checks the rest.
 */
export class LabelIndex<T extends { namespace: string }> {
  private readonly byLabel = new Map<string, T[]>();

  constructor(
    items: T[],
    private readonly labelsOf: (item: T) => Record<string, string>,
  ) {
    for (const item of items) {
      for (const [k, v] of Object.entries(labelsOf(item))) {
        const key = `${item.namespace}/${k}=${v}`;
        const list = this.byLabel.get(key);
        if (list) list.push(item);
        else this.byLabel.set(key, [item]);
      }
    }
  }

  select(namespace: string, selector: Record<string, string>): T[] {
    const first = Object.keys(selector)[0];
    if (first === undefined) return [];
    const candidates = this.byLabel.get(`${namespace}/${first}=${selector[first]}`) ?? [];
    return candidates.filter((item) => selects(selector, this.labelsOf(item)));
  }
}

export function formatSelector(selector: Record<string, string>): string {
  return Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
