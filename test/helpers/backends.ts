// backends.ts (test helper) — backends a test owns: echo, reset, and flood servers on addresses of its own.
import net from 'node:net';

export interface Backend {
  server: net.Server;
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** tcpBackend listens with allowHalfOpen, so tests can check half-close end to end. */
export async function tcpBackend(host: string, port: number, onConnection: (s: net.Socket) => void): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    onConnection(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** selectorless returns a Service with its EndpointSlice: the way users point portlab at their own process. */
export function selectorless(name: string, ports: { name: string; port: number; nodePort?: number; targetPort: number; protocol?: string; appProtocol?: string }[], addresses: string[]): string {
  const svcPorts = ports
    .map((p) => `    - name: ${p.name}\n      port: ${p.port}\n      targetPort: ${p.targetPort}\n      protocol: ${p.protocol ?? 'TCP'}${p.nodePort ? `\n      nodePort: ${p.nodePort}` : ''}${p.appProtocol ? `\n      appProtocol: ${p.appProtocol}` : ''}`)
    .join('\n');
  const slicePorts = ports.map((p) => `  - name: ${p.name}\n    port: ${p.targetPort}\n    protocol: ${p.protocol ?? 'TCP'}`).join('\n');
  const eps = addresses.map((a) => `  - addresses: ["${a}"]\n    conditions: {ready: true}`).join('\n');
  const type = ports.some((p) => p.nodePort) ? 'NodePort' : 'ClusterIP';
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  type: ${type}
  ports:
${svcPorts}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-1
  labels:
    kubernetes.io/service-name: ${name}
addressType: IPv4
ports:
${slicePorts}
endpoints:
${eps}
`;
}
