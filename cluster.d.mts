import cluster = require('./cluster.js')
import type { Worker as NodeWorker } from 'node:cluster'

export default cluster
export declare const SCHED_NONE: typeof cluster.SCHED_NONE
export declare const SCHED_RR: typeof cluster.SCHED_RR
export declare const Worker: typeof NodeWorker
export declare const disconnect: typeof cluster.disconnect
export declare const fork: typeof cluster.fork
export declare const isMaster: typeof cluster.isMaster
export declare const isPrimary: typeof cluster.isPrimary
export declare const isWorker: typeof cluster.isWorker
export declare const schedulingPolicy: typeof cluster.schedulingPolicy
export declare const settings: typeof cluster.settings
export declare const setupMaster: typeof cluster.setupMaster
export declare const setupPrimary: typeof cluster.setupPrimary
export declare const worker: typeof cluster.worker
export declare const workers: typeof cluster.workers
export type { DistributeInfo, NetUnixClusterSettings, NetUnixCluster } from './cluster.js'
