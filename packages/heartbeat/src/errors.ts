import { defineErrors } from '@tandem/core';

/**
 * Error codes of the heartbeat configuration (ha.cf, authkeys) and of the media. Users and tests
 * match on these codes; HEARTBEAT-CONFIG.md lists each one (a test checks that it does).
 */
export const HEARTBEAT_ERRORS = defineErrors({
  E_HACF_UNKNOWN_DIRECTIVE: 'ha.cf names a directive heartbeat 3.0.6 does not know',
  E_HACF_REFUSED: 'ha.cf uses a directive heartbeat accepts but tandem does not implement (crm/pacemaker, stonith, ...)',
  E_HACF_BAD_VALUE: 'a directive value is malformed (time, number, boolean, enumeration)',
  E_HACF_MISSING_VALUE: 'a directive needs a value and has none',
  E_HACF_BAD_MEDIUM: 'a bcast/mcast/ucast/serial line is incomplete or malformed',
  E_HACF_TIMING: 'keepalive, deadtime, warntime, initdead or deadping are inconsistent',
  E_HACF_NO_MEDIA: 'no heartbeat medium is configured',
  E_HACF_NO_NODES: 'no node line (and no autojoin any)',
  E_HACF_AUTOJOIN: 'autojoin other/any conflicts with haresources (R1) resource management',
  E_HACF_RESPAWN: 'a respawn line is malformed (relative path) or, on this machine, its user or program is missing',
  E_HACF_APIAUTH: 'an apiauth line names neither uid= nor gid=',
  E_HACF_LOCAL_NODE: 'this machine (uname -n) is not listed in a node line (machine-dependent)',
  E_HACF_NO_INTERFACE: 'a medium names a network interface this machine does not have (machine-dependent)',
  E_HACF_NO_DEVICE: 'a serial medium names a device that does not exist (machine-dependent)',
  E_HACF_ORDER: 'udpport or baud comes after the media lines it would have applied to',
  E_HACF_DEPRECATED: 'a deprecated setting (auto_failback legacy, nice_failback, udp) was mapped to its replacement',
  E_AUTHKEYS_MODE: 'authkeys is readable by group or others (heartbeat requires 600)',
  E_AUTHKEYS_MISSING_AUTH: 'authkeys has no auth N line',
  E_AUTHKEYS_BAD_INDEX: 'a key number is not 0..15',
  E_AUTHKEYS_BAD_METHOD: 'a key method is not crc, md5 or sha1',
  E_AUTHKEYS_KEY: 'crc given a key, or md5/sha1 without one',
  E_AUTHKEYS_NOT_FOUND: 'auth N names a key that is not defined',
  E_AUTHKEYS_SYNTAX: 'an authkeys line is malformed',
  E_MEDIA_INTERFACE: 'a medium could not find its interface or its address',
  E_MEDIA_BIND: 'a medium could not bind its socket or open its device',
});
