// Long-poll reads from a Node Readable: resolve with the next chunk (at most maxLen bytes),
// or eof once the stream has ended. The owner serves ReadStdout/ReadStderr with it.

import type { Readable } from 'node:stream';
import { Code, errorf } from '../errors/index.js';

/** readChunk returns the next chunk of r (up to maxLen bytes) or eof; an abort rejects with CANCELLED. */
export async function readChunk(r: Readable, maxLen: number, signal?: AbortSignal): Promise<{ data: Uint8Array; eof: boolean }> {
  for (;;) {
    if (signal?.aborted) throw errorf(Code.CANCELLED, 'read cancelled');
    const chunk = r.read() as Buffer | null;
    if (chunk !== null) {
      if (chunk.length > maxLen) {
        r.unshift(chunk.subarray(maxLen));
        return { data: chunk.subarray(0, maxLen), eof: false };
      }
      return { data: chunk, eof: false };
    }
    if (r.readableEnded || r.destroyed) return { data: new Uint8Array(0), eof: true };
    await new Promise<void>((resolve) => {
      const done = (): void => {
        r.off('readable', done);
        r.off('end', done);
        r.off('close', done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      r.on('readable', done);
      r.on('end', done);
      r.on('close', done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
