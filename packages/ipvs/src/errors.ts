// Submodule imports keep tandem-ipvsadm's start light (no logging or process machinery).
import { TandemError, defineErrors, type TandemErrorOptions } from '@tandem/core/errors';

/**
 * The ipvs package's error catalog. Table errors carry, as their message, the exact text ipvsadm
 * prints for the kernel's answer (libipvs' strerror table), so the ipvsadm-compatible command can
 * print `err.message` as is and every backend reports the same words.
 */
export const IPVS_ERRORS = defineErrors({
  E_IPVS_SERVICE_EXISTS: 'the virtual service is already in the table (-A of an existing service)',
  E_IPVS_NO_SERVICE: 'the virtual service is not in the table (-E, -D, -Z of an unknown service)',
  E_IPVS_SERVICE_NOT_DEFINED: 'a real-server operation names a virtual service that is not in the table',
  E_IPVS_DEST_EXISTS: 'the real server is already in that virtual service (-a twice)',
  E_IPVS_NO_DEST: 'the real server is not in that virtual service (-e or -d of an unknown real)',
  E_IPVS_SCHEDULER: 'unknown scheduler (or persistence engine)',
  E_IPVS_INVALID: 'the table rejects the operation as invalid (bad address, port, mark, flags)',
  E_IPVS_RANGE: 'a number is out of range for the table (weight, thresholds)',
  E_IPVS_FAMILY: 'the real server and the virtual service have different address families',
  E_IPVS_RULE: 'a line of ipvsadm rules (ipvsadm -R input, ipvsadm-save file) is malformed',
  E_IPVS_LISTING: 'ipvsadm -L output could not be parsed',
  E_IPVS_COMMAND: 'an ipvsadm command failed; its exit code and output are in the message',
  E_IPVS_DAEMON: 'the embedded balancer daemon could not be reached or refused a request',
  E_IPVS_STATE: 'the saved table of the embedded balancer could not be read or written',
  E_IPVS_BACKEND: 'unknown IPVS backend name',
});

export type IpvsErrorCode = keyof typeof IPVS_ERRORS;

/** The words ipvsadm 1.31 prints for each table error (libipvs ipvs_strerror). */
export const KERNEL_MESSAGES: Readonly<Record<string, string>> = {
  E_IPVS_SERVICE_EXISTS: 'Service already exists',
  E_IPVS_NO_SERVICE: 'No such service',
  E_IPVS_SERVICE_NOT_DEFINED: 'Service not defined',
  E_IPVS_DEST_EXISTS: 'Destination already exists',
  E_IPVS_NO_DEST: 'No such destination',
  E_IPVS_SCHEDULER: 'Scheduler or persistence engine not found',
  E_IPVS_INVALID:
    'Invalid operation.  Possibly wrong module version, address not unicast, ...',
  E_IPVS_RANGE: 'Numerical result out of range',
  E_IPVS_FAMILY: 'Operation not supported with specified address family',
};

export class IpvsError extends TandemError {
  constructor(code: IpvsErrorCode, message: string, opts: TandemErrorOptions = {}) {
    super(code, message, opts);
    this.name = 'IpvsError';
  }
}

/** A table error with ipvsadm's own words; `what` goes into details for logs and tests. */
export function tableError(code: keyof typeof KERNEL_MESSAGES & IpvsErrorCode, what: string, opIndex?: number): IpvsError {
  return new IpvsError(code, KERNEL_MESSAGES[code]!, { details: { what, ...(opIndex === undefined ? {} : { opIndex }) } });
}
