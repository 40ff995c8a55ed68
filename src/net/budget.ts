// budget.ts — the process's connections, bounded by its descriptor limit as HAProxy bounds maxconn by ulimit -n: past
// it a new connection is refused with a reset, at once and counted, instead of failing later with EMFILE.

/** FDS_PER_CONNECTION: an accepted connection holds its own descriptor, its upstream's, and a share of the pod's. */
export const FDS_PER_CONNECTION = 3;
/** RESERVED_FDS are left for listeners, the admin listener, files and the pods' listening sockets. */
export const RESERVED_FDS = 256;

export class ConnectionBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** fromFdLimit is the budget a soft limit of `fds` descriptors affords. */
  static fromFdLimit(fds: number): ConnectionBudget {
    return new ConnectionBudget(Math.max(16, Math.floor((fds - RESERVED_FDS) / FDS_PER_CONNECTION)));
  }

  /** take reserves one connection; false means the budget is spent and the connection must be refused. */
  take(): boolean {
    if (this.used >= this.limit) return false;
    this.used++;
    return true;
  }

  give(): void {
    if (this.used > 0) this.used--;
  }

  get inUse(): number {
    return this.used;
  }
}

/** Admission is what a forwarder checks before it takes a connection: its own limit, then the process's budget. */
export interface Admission {
  maxConnections?: number;
  budget?: ConnectionBudget;
}

/**
 * admit says whether a listener with `open` connections may take one more. A refusal is a reset, never a clean FIN that
 * would look like success; the caller counts it.
 */
export function admit(admission: Admission, open: number): 'ok' | 'max_connections' | 'fd_limit' {
  if (admission.maxConnections !== undefined && open >= admission.maxConnections) return 'max_connections';
  if (admission.budget && !admission.budget.take()) return 'fd_limit';
  return 'ok';
}
