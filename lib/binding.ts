// The native module, typed once: the generated binding for the #[napi] exports plus the raw
// Node-API exports that hold buffers across loop turns and settle promises from libuv.
import * as generated from '../binding.js'

interface RawExports {
  init(makeErrnoError: (errno: number, syscall: string) => Error, makeClosedError: () => Error): void
  // The *Async calls return a number (result or -errno) when they completed at once.
  acceptAsync(fd: number, flags: number, token: number): number | Promise<number>
  recvmsgAsync(fd: number, bufs: Uint8Array | Uint8Array[], maxFds: number, token: number, out: Int32Array): number | Promise<number[]>
  sendmsgAsync(fd: number, bufs: Uint8Array | Uint8Array[], fds: number[], groups: number[], token: number): number | Promise<number>
  cancel(token: number, reason: unknown): boolean
  close(fd: number): number
  pending(fd: number): number
  recvmsgSync(fd: number, bufs: Uint8Array[], maxFds: number, out: Int32Array): number
  sendmsgSync(fd: number, bufs: Uint8Array[], fds: number[], groups: number[]): number
  // Datagram sockets (dgram.rs): receives leave [flags, nfds, pid, uid, gid, addrLen,
  // addr[108], ...fds] in `out` (or resolve with [bytes, ...that]).
  recvfromAsync(fd: number, bufs: Uint8Array | Uint8Array[], maxFds: number, creds: boolean, token: number, out: Int32Array): number | Promise<number[]>
  sendtoAsync(fd: number, bufs: Uint8Array | Uint8Array[], to: Uint8Array | null, fds: number[], groups: number[], creds: boolean, token: number): number | Promise<number>
  recvfromSync(fd: number, bufs: Uint8Array | Uint8Array[], maxFds: number, creds: boolean, out: Int32Array, dontwait: boolean): number
  sendtoSync(fd: number, bufs: Uint8Array | Uint8Array[], to: Uint8Array | null, fds: number[], groups: number[], creds: boolean, dontwait: boolean): number
  // A plain readiness watcher (1 readable, 2 writable), for the evented datagram socket.
  watch(fd: number, callback: (status: number, events: number) => void): number
  watchStart(id: number, events: number): number
  watchRef(id: number, on: boolean): void
  watchClose(id: number): void
}

export const binding = generated as typeof generated & RawExports
