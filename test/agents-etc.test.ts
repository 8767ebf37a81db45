/**
 * The example files of etc/ are what a user copies: they must pass the parsers that will read them,
 * name only agents that exist, and the init scripts must be valid sh.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ProblemSink } from '@tandem/core';
import { AgentRunner, REPO_RESOURCE_DIR, parseHaresources } from '@tandem/resources';
import { parseHaCf } from '@tandem/heartbeat/hacf';
import { parseAuthkeys } from '@tandem/heartbeat/authkeys';

const ETC = fileURLToPath(new URL('../etc/', import.meta.url));

describe('etc/ examples', () => {
  it('ha.cf, authkeys and haresources parse without errors and name existing agents', () => {
    const hacf = parseHaCf(readFileSync(`${ETC}ha.d/ha.cf`, 'utf8'), 'ha.cf');
    assert.deepEqual(hacf.problems.filter((p) => p.severity === 'error'), []);
    assert.equal(hacf.config?.ipfail, true);
    assert.equal(hacf.config?.autoFailback, 'on');
    const keys = parseAuthkeys(readFileSync(`${ETC}ha.d/authkeys`, 'utf8'), 'authkeys');
    assert.deepEqual(keys.problems.filter((p) => p.severity === 'error'), []);
    // git keeps no mode but the executable bit: a copy in /etc/ha.d must be made 600 (heartbeat and
    // tandem refuse it otherwise), as etc/README.md says.
    const sink = new ProblemSink('haresources');
    const res = parseHaresources(readFileSync(`${ETC}ha.d/haresources`, 'utf8'), 'haresources', { nodes: hacf.config?.nodes }, sink);
    assert.deepEqual(sink.problems, []);
    const runner = new AgentRunner({ resourceDirs: [REPO_RESOURCE_DIR], initDirs: [] });
    for (const r of res.groups[0]!.resources) assert.equal(runner.resolve(r).kind, 'heartbeat', r.token);
  });

  it('the init scripts are valid sh and print their usage', async () => {
    for (const s of ['heartbeat', 'ldirectord']) {
      assert.equal((await execa('sh', ['-n', `${ETC}init.d/${s}`], { reject: false })).exitCode, 0, s);
      const u = await execa(`${ETC}init.d/${s}`, ['bogus'], { reject: false });
      assert.equal(u.exitCode, 2);
      assert.match(String(u.stderr), /^Usage: .*\{start\|stop\|.*status/);
    }
  });
});
