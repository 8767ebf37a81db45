import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { IpvsDaemon } from '@tandem/ipvs';
import { ROOT, cli, stubDataplane } from './helpers.ts';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

/**
 * The ipvsadm commands the real ldirectord 4.12 issued in the recorded runs of
 * shared/reference/ldirectord-runs/sequences (every mutating call with its exit code and message),
 * replayed through tandem-ipvsadm: each must end the same way, and the table after the run must be
 * listed exactly as recorded.
 */
const DIR = join(FIXTURES, 'reference', 'ldirectord-runs', 'sequences');

describe('replaying the real ldirectord\'s recorded ipvsadm commands', () => {
  const logs = readdirSync(DIR).filter((f) => f.endsWith('.ipvsadm.log'));
  it('finds the recordings', () => assert.ok(logs.length >= 10));
  for (const log of logs) {
    const name = log.replace('.ipvsadm.log', '');
    it(`${name}: same exit codes and messages, same final table`, async () => {
      const daemon = await IpvsDaemon.create({ dataplane: stubDataplane() });
      try {
        let n = 0;
        for (const line of readFileSync(join(DIR, log), 'utf8').split('\n')) {
          const m = / CMD rc=(\d+) dur=\S+ ipvsadm (.*?)\s*(?:\[by harness\])?\s*(?:# (.*))?$/.exec(line);
          if (!m) continue;
          n++;
          const r = await cli(daemon, m[2]!.trim().split(/\s+/));
          assert.equal(r.code, Number(m[1]), `${name}: ${m[2]}: ${r.stderr}`);
          if (m[3]) assert.equal(r.stderr.trim(), m[3].trim());
        }
        assert.ok(n > 10);
        assert.equal((await cli(daemon, ['-L', '-n'])).stdout, readFileSync(join(DIR, `${name}.table`), 'utf8'));
      } finally {
        await daemon.close();
      }
    });
  }
});
