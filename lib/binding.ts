// The native module, typed once: the generated binding for the #[napi] exports plus the raw
// Node-API exports that hold buffers across loop turns and settle promises from libuv.
import * as generated from '../binding.js'

interface RawExports {
  // With scheduleTurn, readiness comes from a poll thread of ours (runtimes without a real libuv).
  init(
    makeErrnoError: (errno: number, syscall: string) => Error,
    makeClosedError: () => Error,
    scheduleTurn?: () => void,
  ): void
  turn(): void
  setRef(fd: number, on: boolean): number
  // The *Async calls return a number (result or -errno) when they completed at once.
  acceptAsync(fd: number, flags: number, token: number): number | Promise<number>
  recvmsgAsync(
    fd: number,
    bufs: Uint8Array | Uint8Array[],
    maxFds: number,
    token: number,
    out: Int32Array,
  ): number | Promise<number[]>
  sendmsgAsync(
    fd: number,
    bufs: Uint8Array | Uint8Array[],
    fds: number[],
    groups: number[],
    token: number,
  ): number | Promise<number>
  cancel(token: number, reason: unknown): boolean
  close(fd: number): number
  pending(fd: number): number
  recvmsgSync(fd: number, bufs: Uint8Array[], maxFds: number, out: Int32Array): number
  sendmsgSync(fd: number, bufs: Uint8Array[], fds: number[], groups: number[]): number
  // [n, (bytes, truncated, nfds, ...fds) x n] in `out` when it completed at once; with `from`,
  // [n, (bytes, flags, nfds, pid, uid, gid, addrLen, ...addr, ...fds) x n].
  recvManyAsync(
    fd: number,
    buf: Uint8Array,
    slot: number,
    maxFds: number,
    token: number,
    out: Int32Array,
    from?: boolean,
    creds?: boolean,
  ): number | Promise<number[]>
  // recvManyAsync that never waits (-EAGAIN), for callers that watch readiness themselves.
  recvManyNow(
    fd: number,
    buf: Uint8Array,
    slot: number,
    maxFds: number,
    from: boolean,
    creds: boolean,
    out: Int32Array,
  ): number
  // [messages, lastBytes] in `out` when it completed at once.
  sendManyAsync(
    fd: number,
    bufs: Uint8Array[],
    fds: Int32Array,
    counts: Int32Array,
    token: number,
    out: Int32Array,
  ): number | Promise<number[]>
  // With `owned` (fds of ours known open), runs go in one close_range and nothing is reported.
  closeAll(fds: readonly number[] | Int32Array, owned?: boolean): number
  // Datagram sockets (dgram.rs): receives leave [bytes, flags, nfds, pid, uid, gid, addrLen,
  // ...addr, ...fds] in `out` (or resolve with it), one message of recvManyAsync's `from` layout.
  recvfromAsync(
    fd: number,
    bufs: Uint8Array | Uint8Array[],
    maxFds: number,
    creds: boolean,
    token: number,
    out: Int32Array,
  ): number | Promise<number[]>
  sendtoAsync(
    fd: number,
    bufs: Uint8Array | Uint8Array[],
    to: Uint8Array | null,
    fds: number[],
    groups: number[],
    creds: boolean,
    token: number,
  ): number | Promise<number>
  recvfromSync(
    fd: number,
    bufs: Uint8Array | Uint8Array[],
    maxFds: number,
    creds: boolean,
    out: Int32Array,
    dontwait: boolean,
  ): number
  sendtoSync(
    fd: number,
    bufs: Uint8Array | Uint8Array[],
    to: Uint8Array | null,
    fds: number[],
    groups: number[],
    creds: boolean,
    dontwait: boolean,
  ): number
  // Resolves (or returns at once) when fd is readable (or writable): poll(2) revents.
  readyAsync(fd: number, writes: boolean, token: number): number | Promise<number>
  // Where the persistent reads of pool `id` (-1: a new pool) go: pool[at[0]..]; the result in
  // `out` as [n, (bytes, flags, nfds, ...fds) x n], message i in slot i of the pool's rest.
  // Returns the pool's id.
  setReadPool(id: number, pool: Uint8Array, at: Int32Array, out: Int32Array): number
  // A stream's persistent read into read pool `pool`: onRead(n) after each read (n messages, or
  // -errno) returns true to read on (slot: a batch's slot size; 0: a seqpacket socket, never
  // batched, and -EMSGSIZE with the next message's length in out[0] when the pool's rest is too
  // short for it). 0 or -errno (EALREADY: already on).
  readStart(fd: number, pool: number, slot: number, onRead: (n: number) => boolean): number
}

// A copy with fast properties: the loader's object is in dictionary mode (dozens of exports set
// one by one), which made every `binding.x` in a hot path a dictionary lookup.
export const binding = { ...generated } as typeof generated & RawExports
