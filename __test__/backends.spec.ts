// The specs that exercise readiness (waits, signals, abort, HUP-only fds, the stream's reads),
// run again under the poll-thread backend, the one Bun and Deno get: the preload makes net-unix
// choose it, before any of them loads the package.
import './fixtures/poll-thread.cjs'
import './abort.spec'
import './eintr.spec'
import './stream.spec'
import './systemd.spec'
