/**
 * `net-unix/cluster`: `node:cluster` with connections handed to workers by `SCM_RIGHTS`.
 *
 * A drop-in: `require('net-unix/cluster')` (or `import cluster from 'net-unix/cluster'`) in the
 * primary instead of `node:cluster`, nothing else changed. It is node:cluster's own object (fork,
 * workers, events, `worker.send` all node's), with its round-robin scheduler replaced: the
 * primary listens once per key, accepts on the raw socket, and passes each connection's fd to
 * the least-loaded worker over a private socketpair, several per `sendmsg`, keeping each until
 * its worker acknowledged it (a worker that dies first never had it: another gets it). Workers
 * get the package's side through `--require` in their `execArgv`, whatever file they run; in
 * them `server.listen(port | { port, host } | 0 | path)` works as with node:cluster.
 * `setupPrimary({ distribute(info) })` routes by client (sticky sessions);
 * `setupPrimary({ handover: await handover(path) })` lets a successor primary take the
 * listeners over, workers and all (README: "Replacing the primary, workers and all").
 *
 * Loading it changes node:cluster for the whole process (it is the same object). Under Bun and
 * Deno it is the runtime's own node:cluster, unchanged.
 *
 * @module
 */
import nodeCluster = require('node:cluster')
import type { Cluster } from 'node:cluster'
import { installPrimary } from './lib/cluster/primary'
import type { DistributeInfo as Info, NetUnixClusterSettings as Settings } from './lib/cluster/primary'
import { installWorker } from './lib/cluster/worker'

const cluster = nodeCluster as unknown as cluster.NetUnixCluster
// Bun's and Deno's node:cluster are their own (Bun's workers do not ask the primary for a
// listener; Deno's net.Server has no OS fd to take): there this is the runtime's node:cluster.
const onNode = !process.versions.bun && !process.versions.deno
if (onNode && cluster.isPrimary) installPrimary()
else if (onNode) installWorker()

// eslint-disable-next-line @typescript-eslint/no-namespace
declare namespace cluster {
  /** What the `distribute` hook is called with, per connection. */
  export type DistributeInfo = Info
  /** node:cluster's settings, the `distribute` hook and the `handover` to take part in. */
  export type NetUnixClusterSettings = Settings
  /** node:cluster's object, with `distribute` in its settings. */
  export type NetUnixCluster = Omit<Cluster, 'settings' | 'setupPrimary' | 'setupMaster'> & {
    /** The settings of the last `setupPrimary()` (node's, with `distribute`). */
    readonly settings: Settings
    /** node:cluster's `setupPrimary`, also taking `distribute(info)` and `handover`. */
    setupPrimary(settings?: Settings): void
    /** Deprecated alias of {@link setupPrimary}, as in node:cluster. */
    setupMaster(settings?: Settings): void
  }
}

export = cluster
