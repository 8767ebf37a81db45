/**
 * From the files in the config dir (ha.cf, authkeys, haresources) to what the daemon runs with, and
 * `heartbeat configtest`. Problems that depend on the machine (this host not a `node`, a missing
 * interface or serial device) are warnings in configtest and errors at start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatProblem, splitConfigLines, type Problem } from '@tandem/core';
import { loadHaCf, checkMachine, realMachineFacts, type HaConfig, type MachineFacts } from '../hacf.ts';
import { loadAuthkeys } from '../authkeys.ts';
import type { DaemonConfig } from '../daemon.ts';
import type { AuthKeys } from '../types.ts';

export const DEFAULT_CONFIG_DIR = '/etc/ha.d';

export interface LoadedConfig {
  configDir: string;
  haConfig: HaConfig | undefined;
  authKeys: AuthKeys | undefined;
  daemon: DaemonConfig | undefined;
  /** Every problem, machine-dependent ones with the severity asked for. */
  problems: Problem[];
  /** haresources groups were checked (the resources package was available and the file exists). */
  notes: string[];
}

/** Directives whose values heartbeat does not hand out through `cl_status hbparameter`, or that take a line. */
const NOT_PARAMETERS = new Set(['node', 'logfacility', 'apiauth', 'bcast', 'mcast', 'mcast6', 'ucast', 'ucast6', 'serial', 'ping', 'ping6', 'ping_group', 'respawn', 'failfast', 'stonith', 'stonith_host', 'env', 'udp']);

/** `hbparameter` values: as written in ha.cf (the last value wins), else the computed default. */
export function hbParameters(cfg: HaConfig): Record<string, string> {
  const p: Record<string, string> = {
    keepalive: `${cfg.keepaliveMs}ms`, deadtime: `${cfg.deadtimeMs}ms`, warntime: `${cfg.warntimeMs}ms`,
    initdead: `${cfg.initdeadMs}ms`, deadping: `${cfg.deadpingMs}ms`, udpport: String(cfg.udpport), baud: String(cfg.baud),
    debug: String(cfg.debug), msgfmt: cfg.msgfmt, auto_failback: cfg.autoFailback, hopfudge: String(cfg.hopfudge), cluster: cfg.cluster,
  };
  if (cfg.logfile) p.logfile = cfg.logfile;
  if (cfg.debugfile) p.debugfile = cfg.debugfile;
  try {
    for (const l of splitConfigLines(readFileSync(cfg.file, 'utf8'), cfg.file)) {
      const [name, ...vals] = l.text.split(/[\s,]+/);
      if (!name || NOT_PARAMETERS.has(name) || vals.length === 0) continue;
      p[name] = vals[vals.length - 1]!;
    }
  } catch { /* the parsed values stand */ }
  return p;
}

export function toDaemonConfig(cfg: HaConfig, keys: AuthKeys, nodeName: string): DaemonConfig {
  return {
    nodeName,
    nodes: cfg.nodes,
    timing: cfg.timing,
    deadpingMs: cfg.deadpingMs,
    authKeys: keys,
    msgfmt: cfg.msgfmt,
    hopfudge: cfg.hopfudge,
    rtprio: cfg.rtprio,
    realtime: cfg.realtime,
    logBadPackets: cfg.logBadpack,
    parameters: hbParameters(cfg),
  };
}

/**
 * Loads ha.cf and authkeys (and, when asked, checks haresources). `machine: 'warning'` for
 * configtest, `'error'` for start.
 */
export async function loadConfig(
  configDir: string,
  opts: { machine: 'warning' | 'error'; facts?: MachineFacts; haresources?: boolean },
): Promise<LoadedConfig> {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const hacfFile = join(configDir, 'ha.cf');
  const keyFile = join(configDir, 'authkeys');
  let haConfig: HaConfig | undefined;
  let authKeys: AuthKeys | undefined;
  const facts = opts.facts ?? realMachineFacts(configDir);
  try {
    const r = loadHaCf(hacfFile);
    problems.push(...r.problems);
    haConfig = r.config;
    if (haConfig) {
      for (const p of checkMachine(haConfig, facts)) problems.push({ ...p, severity: opts.machine });
    }
  } catch (err) {
    problems.push({ severity: 'error', code: (err as { code?: string }).code ?? 'E_CONF_READ', message: (err as Error).message });
  }
  try {
    const r = loadAuthkeys(keyFile);
    problems.push(...r.problems);
    authKeys = r.keys;
  } catch (err) {
    problems.push({ severity: 'error', code: (err as { code?: string }).code ?? 'E_CONF_READ', message: (err as Error).message });
  }
  if (opts.haresources) {
    const hares = join(configDir, 'haresources');
    if (!existsSync(hares)) notes.push(`no ${hares}: heartbeat will manage no resources`);
    else {
      try {
        const mod = (await import('@tandem/resources')) as typeof import('@tandem/resources');
        const { ProblemSink } = await import('@tandem/core');
        const sink = new ProblemSink(hares);
        const parsed = mod.parseHaresources(readFileSync(hares, 'utf8'), hares, { nodes: haConfig?.nodes }, sink);
        // A missing agent depends on the machine: a warning here, as heartbeat's own check is.
        const { agentDirs } = await import('../rm/index.ts');
        mod.checkAgents(parsed.groups, new mod.AgentRunner(agentDirs(configDir)), sink);
        problems.push(...sink.problems);
        notes.push(`${hares} checked`);
      } catch (err) {
        notes.push(`${hares} not checked: the resources package is not available (${(err as Error).message})`);
      }
    }
  }
  const daemon = haConfig && authKeys && !problems.some((p) => p.severity === 'error')
    ? toDaemonConfig(haConfig, authKeys, facts.nodeName)
    : undefined;
  return { configDir, haConfig, authKeys, daemon, problems, notes };
}

/** `heartbeat configtest`: every problem, one per line, then a summary. Exit 0 when no error, 6 otherwise (heartbeat's config-error code). */
export async function configtest(configDir: string, facts?: MachineFacts): Promise<{ stdout: string; code: number }> {
  const r = await loadConfig(configDir, { machine: 'warning', facts, haresources: true });
  const errors = r.problems.filter((p) => p.severity === 'error').length;
  const warnings = r.problems.length - errors;
  const lines = [...r.problems.map(formatProblem), ...r.notes.map((n) => `note: ${n}`)];
  lines.push(errors === 0
    ? `configuration OK (${configDir}: ha.cf, authkeys${r.notes.some((n) => n.endsWith('checked') && !n.includes('not checked')) ? ', haresources' : ''})${warnings ? `, ${warnings} warning(s)` : ''}`
    : `configuration has ${errors} error(s)${warnings ? ` and ${warnings} warning(s)` : ''}`);
  return { stdout: lines.join('\n') + '\n', code: errors === 0 ? 0 : 6 };
}
