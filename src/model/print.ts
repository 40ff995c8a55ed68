// print.ts — an object's JSON print, made once per object: the change tracker and the diff compare states by it.

const prints = new WeakMap<object, string>();

/** printOf is JSON.stringify(o), cached: the model never changes a state object once it is planned. */
export function printOf(o: object): string {
  let p = prints.get(o);
  if (p === undefined) {
    p = JSON.stringify(o);
    prints.set(o, p);
  }
  return p;
}
