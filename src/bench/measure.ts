// measure.ts — the load generator's measurements. Each is bounded in count and in time, and talks to loopback only.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { Client, Pool } from 'undici';
import { writeBytes } from '../util/write-bytes.js';

export interface Addr {
  host: string;
  port: number;
}

export interface LatencyStats {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  count: number;
}

function histogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** stats reads a histogram recorded in microseconds. */
function stats(h: ReturnType<typeof histogram>): LatencyStats {
  return { p50: h.getValueAtPercentile(50), p90: h.getValueAtPercentile(90), p99: h.getValueAtPercentile(99), max: h.maxValue, count: h.totalCount };
}

function connect(addr: Addr): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: addr.host, port: addr.port, noDelay: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** pingPong: one connection, `count` 64-byte round trips, each timed. */
export async function pingPong(addr: Addr, count: number, timeLimitMs: number): Promise<LatencyStats> {
  const s = await connect(addr);
  const h = histogram();
  const payload = Buffer.alloc(64, 'p');
  const deadline = performance.now() + timeLimitMs;
  try {
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        let got = 0;
        const onData = (d: Buffer) => {
          got += d.length;
          if (got >= 64) {
            s.off('data', onData);
            s.off('error', reject);
            resolve();
          }
        };
        s.on('data', onData);
        s.once('error', reject);
        s.write(payload);
      });
      h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
  } finally {
    s.destroy();
  }
  return stats(h);
}

/** httpLatency: keep-alive GETs at concurrency 1 through undici, each timed. */
export async function httpLatency(addr: Addr, count: number, timeLimitMs: number): Promise<LatencyStats> {
  const client = new Client(`http://${addr.host}:${addr.port}`, { pipelining: 1 });
  const h = histogram();
  const deadline = performance.now() + timeLimitMs;
  try {
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const t0 = performance.now();
      const res = await client.request({ path: '/', method: 'GET' });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`${addr.host}:${addr.port} answered ${res.statusCode}`);
      h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
  } finally {
    await client.close();
  }
  return stats(h);
}

/** httpThroughput: `concurrency` keep-alive connections, each with one request in flight, for `durationMs`. */
export async function httpThroughput(addr: Addr, concurrency: number, durationMs: number, maxRequests: number): Promise<{ rps: number; errors: number }> {
  const pool = new Pool(`http://${addr.host}:${addr.port}`, { connections: concurrency, pipelining: 1 });
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline && done + errors < maxRequests) {
          try {
            const res = await pool.request({ path: '/', method: 'GET' });
            await res.body.dump();
            if (res.statusCode === 200) done++;
            else errors++;
          } catch {
            errors++;
          }
        }
      }),
    );
  } finally {
    await pool.close();
  }
  return { rps: done / ((performance.now() - t0) / 1000), errors };
}

const CHUNK = Buffer.alloc(256 * 1024, 'b');

/** bulk: one connection uploads `bytes` to the sink with backpressure; MB/s until the sink confirms every byte. */
export async function bulk(addr: Addr, bytes: number, timeLimitMs: number): Promise<number> {
  const s = await connect(addr);
  const t0 = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bulk to ${addr.host}:${addr.port} took over ${timeLimitMs} ms`)), timeLimitMs);
      s.once('error', reject);
      s.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      const header = Buffer.alloc(8);
      header.writeBigUInt64BE(BigInt(bytes));
      s.write(header);
      writeBytes(s, CHUNK, bytes, () => {});
    });
  } finally {
    s.destroy();
  }
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

/** connRate: new connections per second; each connects, round-trips one byte, and closes. */
export async function connRate(addr: Addr, concurrency: number, durationMs: number, maxConnections: number): Promise<number> {
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline && done < maxConnections) {
        const s = await connect(addr);
        await new Promise<void>((resolve, reject) => {
          s.once('data', () => resolve());
          s.once('error', reject);
          s.write('x');
        });
        await new Promise<void>((resolve) => {
          s.once('close', () => resolve());
          s.end();
        });
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}
