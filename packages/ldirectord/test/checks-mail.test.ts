import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { ServiceName } from '../src/checks/types.ts';
import { check, type Daemon, freePort, silentServer, spec, startDaemon, waitForPort } from './checks-support.ts';

// smtp/submission against OpenSMTPD, pop/pops/imap/imaps against Dovecot (Debian packages), each
// with a private config in a temporary directory, listening on 127.0.0.1 only.

describe('checks: service=smtp and submission against OpenSMTPD', function () {
  this.timeout(60_000);
  let dir: string;
  let smtpPort: number;
  let submissionPort: number;
  let smtpd: Daemon | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-smtpd-'));
    smtpPort = await freePort();
    submissionPort = await freePort();
    writeFileSync(
      join(dir, 'smtpd.conf'),
      `listen on 127.0.0.1 port ${smtpPort}\nlisten on 127.0.0.1 port ${submissionPort}\naction "local" mbox\nmatch from any for any action "local"\n`,
    );
    smtpd = startDaemon('/usr/sbin/smtpd', ['-d', '-f', join(dir, 'smtpd.conf')]);
    await waitForPort('127.0.0.1', smtpPort, 20_000, smtpd);
    await waitForPort('127.0.0.1', submissionPort, 20_000, smtpd);
  });
  after(async () => {
    await smtpd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('greeting 2xx and EHLO accepted: up (smtp and submission)', async () => {
    const v = await check(spec({ service: 'smtp', port: smtpPort }));
    assert.equal(v.up, true, v.reason);
    assert.match(v.reason, /^SMTP 220 .*OpenSMTPD/);
    const s = await check(spec({ service: 'submission', port: submissionPort }));
    assert.equal(s.up, true, s.reason);
  });

  it('a refused port, a 5xx greeting and a silent server are down', async () => {
    const refused = await check(spec({ service: 'smtp', port: await freePort() }));
    assert.deepEqual([refused.up, refused.reason], [false, 'connection refused']);
    const silent = await silentServer();
    try {
      const t = await check(spec({ service: 'smtp', port: silent.port, negotiateTimeoutMs: 400 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 400 ms']);
    } finally {
      await silent.close();
    }
    const net = await import('node:net');
    const busy = net.createServer((s) => s.end('554 5.3.2 too busy\r\n'));
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const b = await check(spec({ service: 'smtp', port: (busy.address() as { port: number }).port }));
      assert.equal(b.up, false);
      assert.match(b.reason, /greeting: 554/);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });
});

describe('checks: service=pop, pops, imap, imaps against Dovecot', function () {
  this.timeout(60_000);
  let dir: string;
  const ports = { imap: 0, imaps: 0, pop: 0, pops: 0 };
  let dovecot: Daemon | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-dovecot-'));
    chmodSync(dir, 0o755); // dovecot's auth process runs as the dovecot user and reads the passwd-file
    for (const d of ['run', 'state', 'mail']) mkdirSync(join(dir, d));
    chmodSync(join(dir, 'mail'), 0o777);
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=mail.example.test', '-days', '2']);
    writeFileSync(join(dir, 'users'), 'alice:{PLAIN}wonderland::::::\n');
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    writeFileSync(
      join(dir, 'dovecot.conf'),
      `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
disable_plaintext_auth = no
login_trusted_networks = 127.0.0.0/8
auth_failure_delay = 0
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=${dir}/mail/%u
}
mail_location = maildir:${dir}/mail/%u
default_internal_user = dovecot
default_login_user = dovenull
service imap-login {
  inet_listener imap {
    port = ${ports.imap}
  }
  inet_listener imaps {
    port = ${ports.imaps}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${ports.pop}
  }
  inet_listener pop3s {
    port = ${ports.pops}
    ssl = yes
  }
}
`,
    );
    dovecot = startDaemon('/usr/sbin/dovecot', ['-F', '-c', join(dir, 'dovecot.conf')]);
    for (const p of Object.values(ports)) await waitForPort('127.0.0.1', p, 20_000, dovecot);
  });
  after(async () => {
    await dovecot?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const services = ['pop', 'pops', 'imap', 'imaps'] as const satisfies readonly ServiceName[];

  // Successful logins first: a failed login makes dovecot slow down later logins from the same address.
  for (const service of services) {
    it(`${service}: the greeting alone is up; with login, a successful login is up`, async () => {
      const g = await check(spec({ service, port: ports[service] }));
      assert.equal(g.up, true, g.reason);
      const l = await check(spec({ service, port: ports[service], login: 'alice', passwd: 'wonderland', negotiateTimeoutMs: 15_000 }));
      assert.equal(l.up, true, l.reason);
      assert.match(l.reason, /login as alice ok/);
    });
  }

  for (const service of services) {
    it(`${service}: a refused port and a silent server are down (tandem checks the connection even without login)`, async () => {
      const refused = await check(spec({ service, port: await freePort() }));
      assert.deepEqual([refused.up, refused.reason], [false, 'connection refused']);
      const silent = await silentServer();
      try {
        const t = await check(spec({ service, port: silent.port, negotiateTimeoutMs: 400 }));
        assert.deepEqual([t.up, t.reason], [false, 'timeout after 400 ms']);
      } finally {
        await silent.close();
      }
    });
  }

  for (const service of services) {
    it(`${service}: a wrong password is down`, async () => {
      const v = await check(spec({ service, port: ports[service], login: 'alice', passwd: 'wrong', negotiateTimeoutMs: 15_000 }));
      assert.equal(v.up, false);
      assert.match(v.reason, /(PASS|LOGIN): .*(Authentication failed|AUTHENTICATIONFAILED)/);
    });
  }
});
