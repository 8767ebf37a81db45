/**
 * The schedulers of the embedded balancer, each a self-registering module with the kernel's
 * semantics (net/netfilter/ipvs/ip_vs_*.c). Importing this module registers all of them.
 */
import './rr.ts';
import './wrr.ts';
import './lc.ts';
import './wlc.ts';
import './lblc.ts';
import './lblcr.ts';
import './dh.ts';
import './sh.ts';
import './sed.ts';
import './nq.ts';
import './mh.ts';
import './fo.ts';
import './ovf.ts';

export { Dest, type SchedRequest, type SchedService, type Scheduler, type SchedulerFactory, connOverhead } from './types.ts';
export { getScheduler, registerScheduler, schedulerNames } from './registry.ts';
export { afterBind, afterUnbind, totalConns } from './overload.ts';
export { MH_PRIMES, mhPopulate } from './mh.ts';
export { addrFold } from './hash.ts';
