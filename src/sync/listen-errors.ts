// listen-errors.ts — a failed bind becomes one sentence: which Service, which field, which address, and the fix.
import { PortlabError, type ErrorCode } from '../errors.js';
import { hostPort, type Claim } from '../model/desired-state.js';

export function listenError(err: unknown, claim: Claim): PortlabError {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${hostPort(claim.address, claim.port)}/${claim.protocol}`;
  const who = `${claim.owner} ${claim.field}`;
  let errorCode: ErrorCode = 'PORTLAB_LISTEN_FAILED';
  let what = `${code ?? String(err)}`;
  if (code === 'EADDRINUSE') {
    errorCode = 'PORTLAB_LISTEN_IN_USE';
    what = 'the address is already in use by another process';
  } else if (code === 'EACCES' || code === 'EPERM') {
    errorCode = 'PORTLAB_LISTEN_PRIVILEGED';
    what = claim.port < 1024 ? `port ${claim.port} is privileged (below 1024) and this user may not bind it` : 'permission denied';
  } else if (code === 'EADDRNOTAVAIL') {
    errorCode = 'PORTLAB_LISTEN_ADDRESS_UNAVAILABLE';
    what = `${claim.address} is not an address of this machine`;
  }
  return new PortlabError(errorCode, `cannot listen on ${where} for ${who}: ${what}`, { cause: err });
}
