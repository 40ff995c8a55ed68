// problems.ts — one manifest problem, printed as `file:line:col: message`, the position kubectl-style tools print first.

/** Problem is one thing wrong in the manifests. `where` is `file:line:col`. */
export interface Problem {
  where: string;
  message: string;
  /** context is printed under the problem, indented: the source lines around it and a hint. */
  context?: string[];
}

export function problemAt(file: string, pos: { line: number; col: number } | undefined, message: string): Problem {
  return { where: `${file}:${pos?.line ?? 1}:${pos?.col ?? 1}`, message };
}

export function formatProblem(p: Problem): string {
  const head = `${p.where}: ${p.message}`;
  return p.context?.length ? [head, ...p.context.map((line) => `  ${line}`)].join('\n') : head;
}
