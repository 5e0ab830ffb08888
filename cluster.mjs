// ESM entry of net-unix/cluster: node:cluster's object (default) and its names, as node:cluster
// exports them.
import cluster from './cluster.js'

export default cluster
export const {
  SCHED_NONE,
  SCHED_RR,
  Worker,
  disconnect,
  fork,
  isMaster,
  isPrimary,
  isWorker,
  schedulingPolicy,
  settings,
  setupMaster,
  setupPrimary,
  worker,
  workers,
} = cluster
