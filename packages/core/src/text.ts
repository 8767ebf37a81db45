import { readFileSync } from 'node:fs';
import { TandemError } from './errors.ts';

/**
 * A logical line of a config file with where it came from. Config formats here (ha.cf, haresources,
 * authkeys, ldirectord.cf, ipvsadm rules) are line-oriented keyword formats, not INI: they repeat
 * keys, nest by indentation and continue lines with a backslash, which is why they are read with
 * this reader and not with `ini`.
 */
export interface SourceLine {
  file: string;
  /** 1-based number of the (first) physical line. */
  line: number;
  /** Content with the comment and surrounding white space removed. */
  text: string;
  /** Leading white space width of the first physical line (tabs count as 8). */
  indent: number;
  /** The physical text, untouched. */
  raw: string;
}

export interface ReadOptions {
  /** Strip `#` comments. `'line'` only when # starts the line (after white space); `'anywhere'` from any #. Default 'anywhere'. */
  comments?: 'line' | 'anywhere' | 'none';
  /** Join lines ending in a backslash with the next one. Default false. */
  continuation?: boolean;
  /** Keep blank lines (text ''). Default false. */
  keepBlank?: boolean;
}

export function splitConfigLines(content: string, file: string, opts: ReadOptions = {}): SourceLine[] {
  const comments = opts.comments ?? 'anywhere';
  const physical = content.split(/\r?\n/);
  const out: SourceLine[] = [];
  for (let i = 0; i < physical.length; i++) {
    const startLine = i + 1;
    let raw = physical[i]!;
    let joined = raw;
    if (opts.continuation) {
      while (/\\\s*$/.test(joined) && i + 1 < physical.length) {
        joined = joined.replace(/\\\s*$/, ' ') + physical[++i]!;
        raw += '\n' + physical[i]!;
      }
    }
    let text = joined;
    if (comments === 'anywhere') {
      const hash = text.indexOf('#');
      if (hash >= 0) text = text.slice(0, hash);
    } else if (comments === 'line' && /^\s*#/.test(text)) {
      text = '';
    }
    const lead = /^[ \t]*/.exec(joined)![0];
    let indent = 0;
    for (const ch of lead) indent = ch === '\t' ? indent + 8 - (indent % 8) : indent + 1;
    text = text.trim();
    if (text === '' && !opts.keepBlank) continue;
    out.push({ file, line: startLine, text, indent, raw });
  }
  return out;
}

export function readConfigFile(file: string, opts: ReadOptions = {}): SourceLine[] {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TandemError('E_CONF_READ', `cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: 'check the path and its permissions',
    });
  }
  return splitConfigLines(content, file, opts);
}

/** Splits on runs of white space. */
export function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

/** Damerau-free Levenshtein distance, small strings only. */
export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate within a third of the word's length, for "did you mean" hints. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(w.length / 3));
  return best !== undefined && bestD <= limit ? best : undefined;
}

/** Parses yes/no/on/off/true/false/1/0 as heartbeat and ldirectord do; undefined when not a boolean. */
export function parseBool(text: string): boolean | undefined {
  switch (text.trim().toLowerCase()) {
    case 'yes': case 'y': case 'on': case 'true': case '1':
      return true;
    case 'no': case 'n': case 'off': case 'false': case '0':
      return false;
    default:
      return undefined;
  }
}
