import { defineErrors } from '@tandem/core/errors';

/**
 * Every problem code ldirectord.cf loading and the ldirectord daemon/CLI can report. Users and
 * tests match on the code, never on the message; README.md lists each one (a test keeps them in
 * step).
 */
export const LD_ERRORS = defineErrors({
  E_LDCF_UNKNOWN_DIRECTIVE: 'a line names a directive ldirectord does not have (with a did-you-mean)',
  E_LDCF_SYNTAX: 'a line is not of the form directive=value',
  E_LDCF_NOT_HERE: 'a directive is used where it is not allowed (a global-only directive inside a virtual section, a section directive outside one)',
  E_LDCF_INDENT: 'a line is indented but there is no virtual section to belong to',
  E_LDCF_DEPRECATED: 'connecttimeout= or timeout=, refused as ldirectord 4.12 refuses them',
  E_LDCF_BOOL: 'a yes/no directive has another value',
  E_LDCF_NUMBER: 'a number, port or duration is missing, malformed or out of range',
  E_LDCF_QUOTE: 'a quoted value has no closing quote',
  E_LDCF_VIRTUAL: 'a virtual= value is not ip:port, [ipv6]:port, host:service or a firewall mark',
  E_LDCF_DUPLICATE_VIRTUAL: 'two virtual sections describe the same service (protocol, address, port)',
  E_LDCF_REAL: 'a real= or fallback= value cannot be parsed',
  E_LDCF_DUPLICATE_REAL: 'a real server appears twice in one virtual service (after IPVS port rewriting)',
  E_LDCF_RANGE: 'an address range is reversed, mixes families or expands to too many addresses',
  E_LDCF_FORWARD: 'the forwarding method is not gate, masq or ipip',
  E_LDCF_HOST: 'a host name does not resolve, or resolves to the wrong address family',
  E_LDCF_SERVICE_NAME: 'a port is given as a service name that /etc/services does not know',
  E_LDCF_SERVICE: 'service= is not one of the negotiate services ldirectord knows',
  E_LDCF_CHECKTYPE: 'checktype= is not connect, negotiate, ping, external, external-perl, on, off or a number',
  E_LDCF_SCHEDULER: 'scheduler= is not a lower-case IPVS scheduler name',
  E_LDCF_PROTOCOL: 'protocol= is not tcp/udp (address virtuals) or fwm (firewall-mark virtuals)',
  E_LDCF_NETMASK: 'netmask= is not a dotted IPv4 mask (IPv4) or a prefix length 1..128 (IPv6)',
  E_LDCF_HTTPMETHOD: 'httpmethod= is not GET or HEAD',
  E_LDCF_EMAILSTATUS: 'emailalertstatus= names an unknown daemon state, or combines none with others',
  E_LDCF_FILE: 'a file or directory the config names is missing or not writable',
  E_LDCF_COMPAT: 'warning: tandem accepts this, ldirectord 4.12 would refuse it or read it differently',
  E_LDCF_NO_EFFECT: 'warning: a directive that is accepted but has no effect (or a setting that never takes a real down)',
  E_LD_CONFIG_NOT_FOUND: 'the configuration file was not found in /etc/ha.d, /etc/ha.d/conf or as a path',
  E_LD_USAGE: 'the command line is not valid',
  E_LD_RELOAD_REJECTED: 'a reload found an invalid configuration; the running configuration stays in force',
  E_LD_BACKEND: 'the IPVS backend could not be created, read or written',
  E_LD_NOT_RUNNING: 'the daemon is not running (no live pid file)',
  E_LD_START_FAILED: 'the background daemon did not come up',
  E_LD_MAIL: 'an e-mail alert could not be sent (smtp host refused it, or no sendmail)',
});

export type LdErrorCode = keyof typeof LD_ERRORS;
