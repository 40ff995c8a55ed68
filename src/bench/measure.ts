// measure.ts — the load generator's measurements. Each is bounded in count and in time, and talks to loopback only.
// Each runs one slice on an open connection or pool and adds to a histogram or tally, so run.ts can interleave slices.
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

export type Histogram = ReturnType<typeof histogram>;

export function histogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** stats reads a histogram recorded in microseconds. */
export function stats(h: Histogram): LatencyStats {
  return { p50: h.getValueAtPercentile(50), p90: h.getValueAtPercentile(90), p99: h.getValueAtPercentile(99), max: h.maxValue, count: h.totalCount };
}

export function connect(addr: Addr): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: addr.host, port: addr.port, noDelay: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** pingPong: `count` 64-byte round trips on an open connection, each timed into `h`, until `deadline`. */
export async function pingPong(s: net.Socket, count: number, h: Histogram, deadline: number): Promise<void> {
  const payload = Buffer.alloc(64, 'p');
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
}

/** httpLatency: keep-alive GETs at concurrency 1 on an open undici Client, each timed into `h`, until `deadline`. */
export async function httpLatency(client: Client, count: number, h: Histogram, deadline: number): Promise<void> {
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const t0 = performance.now();
    const res = await client.request({ path: '/', method: 'GET' });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`${client.constructor.name} got ${res.statusCode}`);
    h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
  }
}

export function latencyClient(addr: Addr): Client {
  return new Client(`http://${addr.host}:${addr.port}`, { pipelining: 1 });
}

export function throughputPool(addr: Addr, concurrency: number): Pool {
  return new Pool(`http://${addr.host}:${addr.port}`, { connections: concurrency, pipelining: 1 });
}

/** Tally adds up slices of one measurement: what was done, and over how long. */
export interface Tally {
  done: number;
  errors: number;
  ms: number;
}

export const tally = (): Tally => ({ done: 0, errors: 0, ms: 0 });
export const perSecond = (t: Tally) => t.done / (t.ms / 1000);

/** httpThroughput: `concurrency` requests in flight on an open pool for `durationMs` (or `maxRequests`), added to `into`. */
export async function httpThroughput(pool: Pool, concurrency: number, durationMs: number, maxRequests: number, into: Tally): Promise<void> {
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
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
  into.ms += performance.now() - t0;
  into.done += done;
  into.errors += errors;
}

const CHUNK = Buffer.alloc(256 * 1024, 'b');

/** bulk: uploads `bytes` to the sink on an open connection with backpressure, timed until the sink confirms every byte. */
export async function bulk(s: net.Socket, bytes: number, timeLimitMs: number, into: Tally): Promise<void> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.off('error', done);
      s.off('data', confirmed);
      if (err) reject(err);
      else resolve();
    };
    const confirmed = () => done();
    const timer = setTimeout(() => done(new Error(`bulk upload took over ${timeLimitMs} ms`)), timeLimitMs);
    s.once('error', done);
    s.once('data', confirmed);
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(bytes));
    s.write(header);
    writeBytes(s, CHUNK, bytes, () => {});
  });
  into.ms += performance.now() - t0;
  into.done += bytes;
}

/** connRate: new connections for `durationMs`, each connecting, round-tripping one byte and closing; added to `into`. */
export async function connRate(addr: Addr, concurrency: number, durationMs: number, maxConnections: number, into: Tally): Promise<void> {
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
  into.ms += performance.now() - t0;
  into.done += done;
}

/**
 * turnOrder is the order targets take their turns in one slice: a fresh shuffle per repetition and slice, seeded, so
 * a rerun takes the same turns. A fixed order (even one rotated each repetition) gives each target the same
 * predecessor in every slice, so whatever one target leaves behind (the pod targets' 15,000 req/s leave the load
 * generator the most garbage to collect) would always land on the same next one.
 */
export function turnOrder<T>(list: T[], rep: number, slice: number): T[] {
  let seed = (rep * 7919 + slice * 104_729 + 1) >>> 0;
  const random = () => {
    // mulberry32: small, fast and good enough to shuffle a dozen targets
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * newConnections: `count` new connections, one after another. Each is timed twice: to the end of the handshake as
 * the client sees it (connect), and to the echo of its first byte (first byte: for a userspace proxy, this includes
 * its own connection to the pod). Each closes before the next opens.
 */
export async function newConnections(addr: Addr, count: number, connectH: Histogram, firstByteH: Histogram, deadline: number): Promise<void> {
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const t0 = performance.now();
    const s = await connect(addr);
    const t1 = performance.now();
    await new Promise<void>((resolve, reject) => {
      s.once('data', () => resolve());
      s.once('error', reject);
      s.write('x');
    });
    const t2 = performance.now();
    connectH.recordValue(Math.max(1, Math.round((t1 - t0) * 1000)));
    firstByteH.recordValue(Math.max(1, Math.round((t2 - t0) * 1000)));
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
  }
}
