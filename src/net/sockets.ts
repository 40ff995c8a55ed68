// sockets.ts — the socket helpers every listener shares: listen without probing, bind UDP, close with a drain.
import type dgram from 'node:dgram';
import type net from 'node:net';

/** listenOn resolves once the server listens, and rejects with the system error (EADDRINUSE, EACCES, …). */
export function listenOn(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

/** bindUdp binds a datagram socket, rejects with the system error, and afterwards keeps an 'error' listener on it. */
export function bindUdp(socket: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.removeListener('error', reject);
      socket.on('error', ignore);
      resolve();
    });
  });
}

/** trackSockets keeps the server's open connections in a set, so a close can drain and then end them. */
export function trackSockets(server: net.Server, sockets: Set<net.Socket> = new Set()): Set<net.Socket> {
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return sockets;
}

/** closeServer stops accepting now, waits for open sockets up to drainMs, then destroys what is left. */
export function closeServer(server: net.Server, sockets: Iterable<{ destroy(): void }>, drainMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      for (const s of sockets) s.destroy();
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      for (const s of sockets) s.destroy();
    }, drainMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    if (drainMs <= 0) for (const s of sockets) s.destroy();
  });
}

export function ignore(): void {}
