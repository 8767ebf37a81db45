/**
 * Upper/lower connection thresholds (ipvsadm -x / -y) as ip_vs_conn.c applies them: a server is
 * marked overloaded when a new connection brings its active+inactive count to the upper threshold,
 * and the mark is cleared when a connection leaves and the count drops below the lower threshold
 * (or below 3/4 of the upper one when no lower threshold is set). Overloaded servers get no new
 * connections from any scheduler.
 */
import type { Dest } from './types.ts';

export function totalConns(d: Dest): number {
  return d.activeConns + d.inactConns;
}

/** After a connection was bound to d (ip_vs_bind_dest). */
export function afterBind(d: Dest): void {
  if (d.upperThreshold !== 0 && totalConns(d) >= d.upperThreshold) d.overloaded = true;
}

/** After a connection left d (ip_vs_unbind_dest). */
export function afterUnbind(d: Dest): void {
  if (d.lowerThreshold !== 0) {
    if (totalConns(d) < d.lowerThreshold) d.overloaded = false;
  } else if (d.upperThreshold !== 0) {
    if (totalConns(d) * 4 < d.upperThreshold * 3) d.overloaded = false;
  } else {
    d.overloaded = false;
  }
}
