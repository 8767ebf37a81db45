/**
 * /etc/ha.d/authkeys as heartbeat 3.0.6 reads it (reference/heartbeat.md §4):
 *
 *   auth N            which key signs outgoing packets
 *   N crc | N md5 KEY | N sha1 KEY
 *
 * N is 0..15; the key is the first word after the method; every defined key is accepted on input.
 * The file must not be readable by group or others (write bits are not checked, as in heartbeat).
 * Only lines starting with `#` are comments, so a key may contain `#`.
 */
import { statSync, readFileSync } from 'node:fs';
import { splitConfigLines, ProblemSink, TandemError, type Location, type Problem } from '@tandem/core';
import type { AuthKeys, AuthMethod } from './types.ts';

export interface AuthkeysResult {
  keys: AuthKeys | undefined;
  problems: Problem[];
}

const METHODS: readonly AuthMethod[] = ['crc', 'md5', 'sha1'];

export function parseAuthkeys(content: string, file: string): AuthkeysResult {
  const sink = new ProblemSink(file);
  const problems = sink.problems;
  const err = sink.error.bind(sink);
  const warn = sink.warn.bind(sink);
  let active: number | undefined;
  let activeAt: Location | undefined;
  const keys = new Map<number, { method: AuthMethod; secret: string }>();
  for (const sl of splitConfigLines(content, file, { comments: 'line' })) {
    const w = sl.text.split(/\s+/);
    const at: Location = { file, line: sl.line, directive: w[0]! };
    if (w[0] === 'auth') {
      if (w.length !== 2 || !/^\d+$/.test(w[1]!)) { err('E_AUTHKEYS_SYNTAX', `expected "auth N", got [${sl.text}]`, at, 'e.g. auth 1'); continue; }
      active = Number(w[1]);
      activeAt = at;
      continue;
    }
    if (!/^\d+$/.test(w[0]!)) {
      err('E_AUTHKEYS_SYNTAX', `expected "auth N" or "N method [key]", got [${sl.text}]`, at, 'e.g. 1 sha1 SomeSecret');
      continue;
    }
    const num = Number(w[0]);
    if (num > 15) { err('E_AUTHKEYS_BAD_INDEX', `Invalid authnum [${w[0]}]`, at, 'key numbers are 0..15'); continue; }
    const method = (w[1] ?? '').toLowerCase() as AuthMethod;
    if (!METHODS.includes(method)) {
      err('E_AUTHKEYS_BAD_METHOD', `Invalid authtype [${w[1] ?? ''}]`, at, 'use crc, md5 or sha1 (sha1 recommended)');
      continue;
    }
    const secret = w[2];
    if (method === 'crc' && secret !== undefined) { err('E_AUTHKEYS_KEY', "Auth method [crc] doesn't use a key", at, 'write "N crc" alone, or use sha1 with the key'); continue; }
    if (method !== 'crc' && secret === undefined) { err('E_AUTHKEYS_KEY', `Auth method [${method}] requires a key`, at, `write "${num} ${method} SECRET"`); continue; }
    if (w.length > 3) warn('E_AUTHKEYS_SYNTAX', `only the first word [${secret}] is the key; the rest of the line is ignored (as heartbeat does)`, at);
    if (keys.has(num)) warn('E_AUTHKEYS_SYNTAX', `key ${num} is defined again; this definition wins`, at);
    if (method === 'crc') warn('E_AUTHKEYS_KEY', 'crc authenticates nothing: anyone on the link can forge packets', at, 'use sha1 with a secret');
    keys.set(num, { method, secret: secret ?? '' });
  }
  if (active === undefined) err('E_AUTHKEYS_MISSING_AUTH', `Missing auth directive in keyfile [${file}]`, undefined, 'add "auth N" naming the key that signs outgoing packets');
  else if (!keys.has(active)) err('E_AUTHKEYS_NOT_FOUND', `Auth Key [${active}] not found in keyfile [${file}]`, activeAt, `add a line "${active} sha1 SECRET"`);
  if (problems.some((p) => p.severity === 'error')) return { keys: undefined, problems };
  return { keys: Object.freeze({ active: active!, keys }), problems };
}

/** heartbeat's permission rule: any group or other read bit is fatal. */
export function checkAuthkeysMode(mode: number, file: string): Problem | undefined {
  if ((mode & 0o044) === 0) return undefined;
  return {
    severity: 'error',
    code: 'E_AUTHKEYS_MODE',
    message: `Bad permissions on keyfile [${file}], 600 recommended. (mode is ${(mode & 0o777).toString(8)})`,
    hint: `chmod 600 ${file}`,
  };
}

/** Reads, checks the mode, parses. A read failure is a TandemError (E_CONF_READ). */
export function loadAuthkeys(file: string): AuthkeysResult {
  let content: string;
  let mode: number;
  try {
    mode = statSync(file).mode;
    content = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TandemError('E_CONF_READ', `cannot read ${file}: ${(cause as Error).message}`, { cause, hint: 'create it with "auth 1" and "1 sha1 SECRET", mode 600' });
  }
  const r = parseAuthkeys(content, file);
  const bad = checkAuthkeysMode(mode, file);
  if (bad) return { keys: undefined, problems: [bad, ...r.problems] };
  return r;
}
