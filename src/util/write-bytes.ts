// write-bytes.ts — stream N bytes of a repeated chunk with backpressure, so a large transfer never sits in memory.

/** writeBytes writes `total` bytes cut from `chunk` to `out`, waiting for 'drain'; then calls `done`. */
export function writeBytes(out: NodeJS.WritableStream, chunk: Buffer, total: number, done: () => void): void {
  let left = total;
  const pump = () => {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!out.write(piece)) {
        out.once('drain', pump);
        return;
      }
    }
    done();
  };
  pump();
}
