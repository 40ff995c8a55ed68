// errors.ts — every error portlab raises: one registry of stable codes, each with its exit code and its fix.

/** ErrorCode lists every stable code. Callers and tests match on these, never on prose. */
export const ErrorCodes = {
  PORTLAB_USAGE: { exit: 2, fix: 'Run `portlab --help` for the commands and flags.' },
  PORTLAB_MANIFEST_INVALID: { exit: 1, fix: 'Fix the fields named above; `portlab validate -f FILE` checks without starting anything.' },
  PORTLAB_MANIFEST_UNREADABLE: { exit: 1, fix: 'Check the path given to -f; it must be a file, a directory of .yaml/.yml/.json files, or - for stdin.' },
  PORTLAB_LISTEN_IN_USE: { exit: 3, fix: 'Stop the process that holds the port (`ss -ltnp` shows it), or move portlab with --node-address, --service-cidr or --pod-cidr (for [::1], --node-address-v6 off).' },
  PORTLAB_LISTEN_PRIVILEGED: { exit: 3, fix: 'Ports below 1024 need root. Serve them at port + N with --port-offset N (80 → 8080 with --port-offset 8000), or run with sudo, or lower net.ipv4.ip_unprivileged_port_start.' },
  PORTLAB_LISTEN_ADDRESS_UNAVAILABLE: { exit: 3, fix: 'The address is not on this machine. On macOS only 127.0.0.1 works without aliases: use --addresses shared.' },
  PORTLAB_LISTEN_FAILED: { exit: 3, fix: 'See the system error above.' },
  PORTLAB_ADDRESS_CLASH: { exit: 3, fix: 'Two owners want the same address and port. Drop --addresses shared, or change one of the ports.' },
  PORTLAB_KERNEL_UNAVAILABLE: { exit: 3, fix: 'Run as root, or inside a private network namespace (sudo unshare -n), with nft or iptables installed; or use --proxy-mode userspace.' },
  PORTLAB_KERNEL_FAILED: { exit: 3, fix: 'See the rule tool\'s message above; the previous rules are still in place.' },
  PORTLAB_HOSTS_NOT_WRITABLE: { exit: 2, fix: 'Run as root to use --write-hosts, or print the lines with `portlab routes --hosts` and add them yourself.' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** PortlabError is the one error class: a stable code, a message that says what and where, and the fix. */
export class PortlabError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly fix: string;
  /** details holds one line per problem when a single error carries many (all manifest errors at once). */
  readonly details: string[];

  constructor(code: ErrorCode, message: string, options: { details?: string[]; fix?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PortlabError';
    this.code = code;
    this.exitCode = ErrorCodes[code].exit;
    this.fix = options.fix ?? ErrorCodes[code].fix;
    this.details = options.details ?? [];
  }
}

export function isPortlabError(err: unknown): err is PortlabError {
  return err instanceof PortlabError;
}
