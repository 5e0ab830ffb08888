import type { Cluster } from 'node:cluster';
import type { DistributeInfo as Info, NetUnixClusterSettings as Settings } from './lib/cluster/primary';
declare const cluster: cluster.NetUnixCluster;
declare namespace cluster {
    /** What the `distribute` hook is called with, per connection. */
    type DistributeInfo = Info;
    /** node:cluster's settings, the `distribute` hook and the `handover` to take part in. */
    type NetUnixClusterSettings = Settings;
    /** node:cluster's object, with `distribute` in its settings. */
    type NetUnixCluster = Omit<Cluster, 'settings' | 'setupPrimary' | 'setupMaster'> & {
        /** The settings of the last `setupPrimary()` (node's, with `distribute`). */
        readonly settings: Settings;
        /** node:cluster's `setupPrimary`, also taking `distribute(info)` and `handover`. */
        setupPrimary(settings?: Settings): void;
        /** Deprecated alias of {@link setupPrimary}, as in node:cluster. */
        setupMaster(settings?: Settings): void;
    };
}
export = cluster;
