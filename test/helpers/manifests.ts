// manifests.ts (test helper) — small manifest builders: a workload of any kind and a Service, as YAML documents.

export interface WorkloadOptions {
  kind?: 'Deployment' | 'ReplicaSet' | 'StatefulSet' | 'DaemonSet' | 'ReplicationController';
  image?: string;
  /** labels is the pod template's labels as a YAML flow mapping; {app: NAME} by default. */
  labels?: string;
  /** ports is the container's ports as a YAML flow list. */
  ports?: string;
  /** container adds YAML flow fields to the container, e.g. `, readinessProbe: {initialDelaySeconds: 1}`. */
  container?: string;
}

/** deployment is one workload document (a Deployment unless opts.kind says otherwise), ending with `---`. */
export function deployment(name: string, replicas: number, opts: WorkloadOptions = {}): string {
  const labels = opts.labels ?? `{app: ${name}}`;
  const kind = opts.kind ?? 'Deployment';
  const selector = kind === 'ReplicationController' ? `selector: ${labels}` : `selector: {matchLabels: ${labels}}`;
  return `apiVersion: ${kind === 'ReplicationController' ? 'v1' : 'apps/v1'}
kind: ${kind}
metadata: {name: ${name}}
spec:
${kind === 'DaemonSet' ? '' : `  replicas: ${replicas}\n`}  ${selector}
  template:
    metadata: {labels: ${labels}}
    spec:
      containers: [{name: c, image: ${opts.image ?? 'app:1'}, ports: ${opts.ports ?? '[{name: http, containerPort: 5000}]'}${opts.container ?? ''}}]
---
`;
}

/** service is one Service document with a selector and the given spec lines (indented two spaces), ending with `---`. */
export function service(name: string, selector: string, spec: string): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  selector: ${selector}
${spec}
---
`;
}
