// health.ts — sync health as kube-proxy's /healthz reports it: when the last sync happened, and whether it failed.

export class SyncHealth {
  lastUpdated?: Date;
  lastError?: string;
  lastErrorAt?: Date;

  synced(): void {
    this.lastUpdated = new Date();
    this.lastError = undefined;
    this.lastErrorAt = undefined;
  }

  failed(message: string): void {
    this.lastError = message;
    this.lastErrorAt = new Date();
  }

  get healthy(): boolean {
    return this.lastUpdated !== undefined && this.lastError === undefined;
  }

  /** json is kube-proxy's shape ({lastUpdated, currentTime}) plus, when a reload failed, why. */
  json(): Record<string, unknown> {
    return {
      lastUpdated: this.lastUpdated?.toISOString() ?? '',
      currentTime: new Date().toISOString(),
      healthy: this.healthy,
      ...(this.lastError ? { lastError: this.lastError, lastErrorAt: this.lastErrorAt?.toISOString() } : {}),
    };
  }
}
