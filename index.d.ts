/**
 * net-unix: Unix-domain sockets for Node.js with Hare's `net::unix` API.
 *
 * Sockets are plain file descriptors (numbers), usable with `new net.Socket({ fd })`,
 * `server.listen({ fd })`, `fs.closeSync` and `child_process` stdio. Promise forms wait on
 * Node's own event loop and never block it; each has a blocking `*Sync` twin with Hare's
 * semantics. Errors are shaped like Node's own.
 *
 * @packageDocumentation
 */
import { AbortError, invalid } from './lib/errors';
import type { ErrnoError } from './lib/errors';
import { kBacklog, kSeqpacket } from './lib/options';
import { UnixServer, UnixSocket } from './lib/stream';
import type { UnixServerOptions, UnixSocketOptions } from './lib/stream';
export { AbortError, invalid };
export type { ErrnoError };
export { createSocket, dgramSocket, localaddr, recvfrom, recvfromMany, recvfromSync, send, sendSync, sendto, sendtoSync, UnixDgramSocket, } from './lib/dgram';
export type { Datagram, DgramSocketOptions, RecvOptions, RemoteInfo, SendOptions, UnixDgramOptions } from './lib/dgram';
export { listenFds, notify, notifyBarrier } from './lib/systemd';
export { Handover } from './lib/handover';
export type { Drained, HandoverOptions } from './lib/handover';
import type { Handover, HandoverOptions } from './lib/handover';
/**
 * Replaces a running server with no failed request (API.md §12). The same call in every
 * generation: `path` names the control socket (a filesystem path, created mode 0600, or an
 * abstract name `"\0name"`). With a predecessor listening there, its listeners (and later its
 * idle HTTP keep-alive connections) arrive over `SCM_RIGHTS` and the result is generation
 * predecessor + 1; with none, it is generation 0. A path that refuses connections
 * (`ECONNREFUSED`: every process died) is stale and removed; `EACCES` is never stale.
 *
 * ```js
 * const h = await handover('/run/app/handover.sock')
 * const server = http.createServer(app)
 * await h.listen(server, 'http', 8080)  // inherited, or listen(8080) in generation 0
 * await h.ready()                       // a successor: the old process stopped accepting
 * h.once('handover', () => {})          // old side: the successor took over
 * h.drained.then(() => process.exit(0)) // old side: the last request was answered
 * ```
 *
 * @returns a promise of the {@link Handover} of this process.
 * @rejects {Error} `ERR_HANDOVER_PEER` (the predecessor runs as another user, neither ours nor
 * root, or refused ours), `ERR_HANDOVER_BUSY` (another successor is taking over),
 * `ERR_HANDOVER_VERSION` (another protocol version), `ERR_HANDOVER_PREDECESSOR_GONE` (the
 * predecessor died before every listener arrived; nothing is kept: see `onPredecessorLost`),
 * an {@link ErrnoError} (`EACCES`, …) from connecting; {@link invalid} for a bad path;
 * `ERR_INVALID_ARG_TYPE` / `ERR_OUT_OF_RANGE` for bad options.
 */
export declare function handover(path: addr, options?: HandoverOptions): Promise<Handover>;
export type { ListenFd, NotifyOptions } from './lib/systemd';
export { fdinfo } from './lib/fdinfo';
export type { FdInfo, InetAddress } from './lib/fdinfo';
export { adopt } from './lib/adopt';
export type { AdoptOptions, Adopted } from './lib/adopt';
export { peerpidfd, pidfdInfo, pidfdSendSignal, pidfdWait } from './lib/pidfd';
export type { PidfdExit, PidfdInfo } from './lib/pidfd';
/** The most fds one message may carry (Linux `SCM_MAX_FD`). */
export declare const MAX_FDS: number;
/** A socket: a file descriptor. Hare's `net::socket`. */
export type socket = number;
/** A Unix socket address: a filesystem path, or a Linux abstract name written `"\0name"`. */
export type addr = string;
/**
 * Socket flags (Hare's `net::sockflag`), combinable with `|`. Sockets are close-on-exec unless
 * `NOCLOEXEC` is given; `NONBLOCK` makes them non-blocking.
 */
export declare enum sockflag {
    /** Do not set close-on-exec on the new socket. */
    NOCLOEXEC = 524288,
    /** Make the new socket non-blocking. */
    NONBLOCK = 2048
}
/** The listen backlog option, made by {@link backlog}. Hare's `backlog = u32`. */
export interface backlog {
    readonly [kBacklog]: true;
    /** The queue length handed to `listen(2)` (the kernel clamps it to `somaxconn`). */
    readonly value: number;
}
/**
 * The backlog option for {@link listen}: `listen(path, backlog(128))`. Without one the backlog
 * is 10; when several are given the last wins.
 *
 * @throws {TypeError} `ERR_INVALID_ARG_TYPE` if `n` is not a number.
 * @throws {RangeError} `ERR_OUT_OF_RANGE` if `n` is not an integer in `[0, 2**32-1]`.
 */
export declare function backlog(n: number): backlog;
/** The option that makes a `SOCK_SEQPACKET` socket; see {@link seqpacket}. */
export interface seqpacket_option {
    readonly [kSeqpacket]: true;
}
/**
 * The option for {@link listen}, {@link connect}, {@link connectSync} and {@link socketpair}
 * that makes a `SOCK_SEQPACKET` socket instead of a stream: connection-oriented and reliable like
 * a stream, but every send is one message whose boundaries {@link recvmsg} / {@link recvfds}
 * keep (a message longer than the receive buffer sets `dataTruncated`; the rest is dropped).
 * {@link accept} on a seqpacket listener makes seqpacket sockets. `listen(path, seqpacket)`.
 */
export declare const seqpacket: seqpacket_option;
/** Options for {@link connect}: socket flags, or {@link seqpacket}. */
export type connect_option = sockflag | seqpacket_option;
/** Options for {@link listen}: socket flags, a {@link backlog}, or {@link seqpacket}. */
export type listen_option = backlog | sockflag | seqpacket_option;
/** Trailing options object of the Promise forms. */
export interface AsyncOptions {
    /** Aborts the operation: it rejects with an `AbortError` and leaves nothing open or pending. */
    signal?: AbortSignal;
}
/** Trailing options object of {@link connect}. */
export interface ConnectOptions extends AsyncOptions {
    /** Give up after this many milliseconds (rejects with `ETIMEDOUT`). */
    timeout?: number;
}
/**
 * Binds a Unix stream socket to `address` and listens on it. Hare's `net::unix::listen`.
 * Options: {@link sockflag} values and at most one effective {@link backlog} (default 10, last
 * wins). An existing path is not removed (`EADDRINUSE`). The socket file is created with the
 * process umask. Synchronous: none of `socket`, `bind`, `listen` waits.
 *
 * @returns the listening socket.
 * @throws {invalid} for a bad address, before any syscall.
 * @throws {ErrnoError} what the kernel refused (`EADDRINUSE`, `EACCES`, `ENOENT`, …); nothing is
 * left open, and a socket file created by `bind` is removed again.
 */
export declare function listen(address: addr, ...options: listen_option[]): socket;
/**
 * Opens a stream connection to `address`. Hare's `net::unix::connect`, as a Promise that never
 * blocks the event loop. When the listener's backlog is full it keeps trying (short back-off)
 * until connected, refused, aborted, or timed out; it never fails with `EAGAIN`.
 *
 * @param options socket flags, optionally followed by `{ signal, timeout }`.
 * @returns a promise of the connected socket (blocking unless `NONBLOCK` was given).
 * @rejects {invalid} for a bad address, before any syscall.
 * @rejects {ErrnoError} `ENOENT`, `ECONNREFUSED`, `EACCES`, `ETIMEDOUT` (after `timeout`).
 * @rejects {AbortError} when `signal` aborts; the socket is closed.
 */
export declare function connect(address: addr, ...options: (connect_option | ConnectOptions)[]): Promise<socket>;
/**
 * Opens a stream connection to `address`, blocking until it is established (Hare's `connect`).
 * With `NONBLOCK` a full backlog fails with `EAGAIN`, as the kernel says.
 *
 * @returns the connected socket.
 * @throws {invalid} for a bad address; {@link ErrnoError} for what the kernel refused.
 */
export declare function connectSync(address: addr, ...options: connect_option[]): socket;
/**
 * Accepts the next connection on a listening socket (`accept4` with the combined flags).
 * Pending accepts on one listener are served in call order. `accept4` has no `MSG_DONTWAIT`,
 * so a blocking listener is non-blocking only while an accept of ours runs or waits on it, and
 * blocking again after.
 *
 * @param flags socket flags for the new socket, optionally followed by `{ signal }`.
 * @returns a promise of the accepted socket.
 * @rejects {ErrnoError} `EBADF`, `ENOTSOCK`, `EINVAL` (not listening), …
 * @rejects {AbortError} when `signal` aborts. `ERR_SOCKET_CLOSED` when {@link close}d meanwhile.
 */
export declare function accept(sock: socket, ...flags: (sockflag | AsyncOptions)[]): Promise<socket>;
/**
 * Accepts the next connection, blocking until one arrives (Hare's `accept`), even while a
 * Promise {@link accept} waits on the same listener. On a socket non-blocking by its owner's
 * choice (`NONBLOCK`) with nothing pending: `EAGAIN`.
 *
 * @returns the accepted socket.
 * @throws {ErrnoError} what the kernel refused.
 */
export declare function acceptSync(sock: socket, ...flags: sockflag[]): socket;
/**
 * An unnamed, connected pair of stream sockets (`socketpair(AF_UNIX, SOCK_STREAM)`), or of
 * seqpacket sockets with the {@link seqpacket} option.
 *
 * @returns the two sockets.
 * @throws {ErrnoError} `EMFILE`, `ENFILE`.
 */
export declare function socketpair(...flags: (sockflag | seqpacket_option)[]): [socket, socket];
/**
 * A message for {@link sendmsg} / {@link recvmsg} (Hare's `net::msghdr`), made with
 * {@link newmsg}: data vectors, fds to send, room for fds to receive.
 */
export declare class msghdr {
    /**
     * After a receive: the ancillary data did not fit (`MSG_CTRUNC`) or more fds came than
     * {@link allocfiles} made room for. The fds that did fit are still returned by {@link recvfiles}.
     */
    truncated: boolean;
    /**
     * After a receive on a datagram or seqpacket socket: the message was longer than the vectors
     * (`MSG_TRUNC`); what did not fit is gone. Never set on a stream socket.
     */
    dataTruncated: boolean;
}
/** A new, empty message. */
export declare function newmsg(): msghdr;
/**
 * Appends a buffer to the message's scatter/gather list: data to send, or room to receive into.
 * Any `ArrayBufferView` (Buffer, Uint8Array, DataView, …) or `ArrayBuffer`; the memory is used
 * in place.
 */
export declare function addvector(msg: msghdr, buf: ArrayBufferView | ArrayBuffer): void;
/**
 * Adds fds to the message's ancillary data, as one `SCM_RIGHTS` control message. Several calls
 * send several, but Linux merges them: the receiver sees one list, in call order. The fds stay
 * the caller's.
 *
 * @throws {RangeError} more than {@link MAX_FDS} fds in one message.
 */
export declare function addfiles(msg: msghdr, ...files: number[]): void;
/**
 * Reserves room in the message to receive up to `nfile` more fds (calls add up).
 *
 * @throws {RangeError} more than {@link MAX_FDS} in all.
 */
export declare function allocfiles(msg: msghdr, nfile: number): void;
/**
 * After a receive, the fds that arrived and were not yet handed out: at most `nfile`, `[]` when
 * none came. The caller owns them (they are close-on-exec). Fds never handed out are closed by
 * {@link finish}.
 */
export declare function recvfiles(msg: msghdr, nfile: number): number[];
/**
 * Releases the message: every received fd that {@link recvfiles} did not hand out is closed,
 * and the message is emptied.
 */
export declare function finish(msg: msghdr): void;
/**
 * Sends the message's vectors and fds. `MSG_NOSIGNAL` always: a closed peer is an `EPIPE`
 * error, never a signal. Never blocks the event loop.
 *
 * @returns a promise of the number of bytes sent. As with `sendmsg(2)` on a stream socket, that
 * can be fewer than given when the socket buffer fills; the fds always go with the first byte.
 * @rejects {RangeError} for fds with no data byte, more than {@link MAX_FDS} fds.
 * @rejects {ErrnoError} `EPIPE`, `ECONNRESET`, `EBADF`, … ; {@link AbortError}; `ERR_SOCKET_CLOSED`.
 */
export declare function sendmsg(sock: socket, msg: msghdr, options?: AsyncOptions): Promise<number>;
/**
 * Receives into the message's vectors and fd room. Received fds are close-on-exec
 * (`MSG_CMSG_CLOEXEC`); take them with {@link recvfiles}. Never blocks the event loop.
 *
 * @returns a promise of the number of bytes received (0: the peer closed).
 * @rejects {ErrnoError} `ECONNRESET`, `EBADF`, … ; {@link AbortError} (nothing was consumed);
 * `ERR_SOCKET_CLOSED`.
 */
export declare function recvmsg(sock: socket, msg: msghdr, options?: AsyncOptions): Promise<number>;
/** Blocking {@link sendmsg} (Hare's `net::sendmsg`); `EAGAIN` on a non-blocking socket that is full. */
export declare function sendmsgSync(sock: socket, msg: msghdr): number;
/** Blocking {@link recvmsg} (Hare's `net::recvmsg`); `EAGAIN` on a non-blocking socket with nothing to read. */
export declare function recvmsgSync(sock: socket, msg: msghdr): number;
/**
 * Closes a socket (or any fd). Operations of this library pending on it reject with
 * `code: 'ERR_SOCKET_CLOSED'`.
 *
 * @throws {ErrnoError} `EBADF` for an fd that is not open.
 */
export declare function close(sock: socket): void;
/**
 * Sends `data` with `fds` attached in one message (Python's `socket.send_fds`).
 *
 * @returns a promise of the number of data bytes sent (possibly fewer than `data` holds, as
 * {@link sendmsg}).
 * @rejects {RangeError} fds with empty data, or more than {@link MAX_FDS} fds.
 */
export declare function sendfds(sock: socket, data: ArrayBufferView | ArrayBuffer, fds: readonly number[], options?: AsyncOptions): Promise<number>;
/** What {@link recvfds} delivers. */
export interface RecvFdsResult {
    /** The bytes read (empty: the peer closed). */
    data: Buffer;
    /** The fds that arrived (close-on-exec); the caller owns them. */
    fds: number[];
    /** More fds came than `maxFds`; the extra ones were closed. */
    truncated: boolean;
    /** Datagram and seqpacket sockets: the message was longer than `maxBytes`; the rest is gone. */
    dataTruncated: boolean;
}
/**
 * Receives up to `maxBytes` bytes and up to `maxFds` fds in one message (Python's
 * `socket.recv_fds`).
 */
export declare function recvfds(sock: socket, maxBytes: number, maxFds: number, options?: AsyncOptions): Promise<RecvFdsResult>;
/** Most messages one native call of {@link recvfdsMany} / {@link sendfdsMany} moves. */
export declare const MAX_BATCH: number;
/**
 * Receives up to `maxMessages` messages in one native call (`recvmmsg(2)`), each of up to
 * `maxBytes` bytes with up to `maxFds` fds: the batched {@link recvfds}. Waits for the first
 * message, then takes what has arrived, so it resolves with 1 to `maxMessages` results (on a
 * stream socket, bytes that carry fds are never merged with other writes' bytes into one
 * result). Beyond Hare; for receivers of many small fd-carrying messages, where one native call
 * per message is the cost. Received fds are close-on-exec and the caller's; close many at once
 * with {@link closeFds}.
 *
 * @returns a promise of the messages, in order; an empty `data` in the last one means the peer
 * closed.
 * @rejects {RangeError} `maxMessages` outside `[1, MAX_BATCH]`, `maxBytes` < 1, `maxFds` >
 * {@link MAX_FDS}. {@link ErrnoError} (`syscall: 'recvmmsg'`), {@link AbortError},
 * `ERR_SOCKET_CLOSED`, as {@link recvfds}.
 */
export declare function recvfdsMany(sock: socket, maxMessages: number, maxBytes: number, maxFds: number, options?: AsyncOptions): Promise<RecvFdsResult[]>;
/** One message of {@link sendfdsMany}. */
export interface FdMessage {
    /** The bytes; at least one when `fds` is not empty. */
    data: ArrayBufferView | ArrayBuffer;
    /** fds to attach to the message's first byte; they stay the caller's. */
    fds?: readonly number[];
}
/**
 * Sends the messages in order, up to {@link MAX_BATCH} per native call (`sendmmsg(2)`), each
 * with its own fds on its first byte: the batched {@link sendfds}. Waits for room as needed and
 * resolves once every byte of every message is sent. Beyond Hare.
 *
 * @returns a promise of the bytes sent in all.
 * @rejects {TypeError}/{RangeError} for a bad message, before anything is sent.
 * @rejects {ErrnoError} (`syscall: 'sendmmsg'`), {@link AbortError} or `ERR_SOCKET_CLOSED`,
 * with `sent` set to the number of messages that went whole before it.
 */
export declare function sendfdsMany(sock: socket, messages: readonly FdMessage[], options?: AsyncOptions): Promise<number>;
/**
 * Closes every fd in `fds` in one native call (received fds a receiver does not keep); pending
 * operations of this library on them reject as with {@link close}.
 *
 * @throws {ErrnoError} the first failure (`EBADF`), after every fd was tried.
 */
export declare function closeFds(fds: readonly number[]): void;
/** The credentials of the peer of a connected Unix socket (`SO_PEERCRED`). */
export interface Credentials {
    pid: number;
    uid: number;
    gid: number;
}
/**
 * Who is on the other end of a connected socket (`SO_PEERCRED`), as of connect time.
 *
 * @throws {ErrnoError} `ENOTSOCK`, `EBADF`, …
 */
export declare function peercred(sock: socket): Credentials;
/** Operations of this library still pending on `sock` (0 means it may be handed to `net.Socket`). */
export declare function pending(sock: socket): number;
/** A protocol provider for {@link dial}. */
export type dialer = (address: string, service: string) => Promise<socket>;
/** Registers a provider for `proto` with {@link dial} (Hare's `net::dial::registerproto`). */
export declare function registerproto(name: string, provider: dialer): void;
/**
 * Connects to `address` with the provider registered for `proto` (Hare's `net::dial::dial`).
 * Importing net-unix registers `"unix"`, which is {@link connect}.
 *
 * @rejects {Error} `code: 'ERR_UNKNOWN_PROTOCOL'` when no provider is registered.
 */
export declare function dial(proto: string, address: string, service?: string): Promise<socket>;
export { UnixSocket, UnixServer } from './lib/stream';
export type { UnixSocketOptions, UnixServerOptions, UnixListenOptions, PeerCredentials } from './lib/stream';
/** Options of {@link createConnection}. */
export interface CreateConnectionOptions extends UnixSocketOptions {
    /** Give up connecting after this many milliseconds (`'error'` with `ETIMEDOUT`). */
    timeout?: number;
}
/**
 * Connects to `address` as `net.createConnection(path)` does and returns the {@link UnixSocket}
 * at once: `'connect'` (then `'ready'`) follows, or `'error'` (`ENOENT`, `ECONNREFUSED`,
 * `ETIMEDOUT`, an {@link invalid} address). While the listener's backlog is full it keeps
 * trying, as {@link connect}. Writes (with or without fds) made before `'connect'` are
 * buffered and sent once connected; if the connect fails they are called back as `net` does
 * (the one in flight with `ERR_SOCKET_CLOSED_BEFORE_CONNECTION`, the rest with the connect
 * error) and their dups are closed.
 *
 * @param connectListener added as a `'connect'` listener.
 * @throws {TypeError} for options of the wrong type.
 */
export declare function createConnection(address: addr, options?: CreateConnectionOptions | (() => void), connectListener?: () => void): UnixSocket;
/**
 * A {@link UnixServer}, as `net.createServer`: call `listen(path | { path } | { fd })`; each
 * connection arrives as a {@link UnixSocket} on `'connection'`.
 *
 * @param connectionListener added as a `'connection'` listener.
 */
export declare function createServer(options?: UnixServerOptions | ((socket: UnixSocket) => void), connectionListener?: (socket: UnixSocket) => void): UnixServer;
