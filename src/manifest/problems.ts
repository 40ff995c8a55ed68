// problems.ts — one manifest problem, printed as `file:line:col: message` like the example in PRODUCT.md.

/** Problem is one thing wrong in the manifests. `where` is `file:line:col`. */
export interface Problem {
  where: string;
  message: string;
}

export function problemAt(file: string, pos: { line: number; col: number } | undefined, message: string): Problem {
  return { where: `${file}:${pos?.line ?? 1}:${pos?.col ?? 1}`, message };
}

export function formatProblem(p: Problem): string {
  return `${p.where}: ${p.message}`;
}
