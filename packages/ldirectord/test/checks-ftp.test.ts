import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, type Daemon, freePort, silentServer, spec, startDaemon, waitForPort } from './checks-support.ts';

// service=ftp against a real vsftpd (Debian package), anonymous, private config on 127.0.0.1.
describe('checks: service=ftp against vsftpd', function () {
  this.timeout(60_000);
  let dir: string;
  let port: number;
  let ftpd: Daemon | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-vsftpd-'));
    mkdirSync(join(dir, 'root'));
    mkdirSync(join(dir, 'empty'));
    writeFileSync(join(dir, 'root', 'index.html'), '<html>Test Page from ftp</html>\n');
    chmodSync(join(dir, 'root'), 0o555);
    port = await freePort();
    writeFileSync(
      join(dir, 'vsftpd.conf'),
      [
        'listen=YES', 'listen_ipv6=NO', 'listen_address=127.0.0.1', `listen_port=${port}`, 'background=NO',
        'anonymous_enable=YES', `anon_root=${join(dir, 'root')}`, 'no_anon_password=YES', 'local_enable=NO',
        'write_enable=NO', 'pasv_enable=YES', `secure_chroot_dir=${join(dir, 'empty')}`, 'seccomp_sandbox=NO',
        'isolate_network=NO', 'isolate=NO', 'xferlog_enable=NO', '',
      ].join('\n'),
    );
    ftpd = startDaemon('/usr/sbin/vsftpd', [join(dir, 'vsftpd.conf')]);
    await waitForPort('127.0.0.1', port, 20_000, ftpd);
  });
  after(async () => {
    await ftpd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ftp = (over: Parameters<typeof spec>[0] = {}) => spec({ service: 'ftp', port, request: '/index.html', receive: 'Test Page', ...over });

  it('logs in anonymously, CWD /, TYPE I, PASV, RETR the request and matches receive on the content', async () => {
    const v = await check(ftp());
    assert.equal(v.up, true, v.reason);
    assert.match(v.reason, /RETR \/index\.html: \d+ bytes, receive matched/);
  });

  it('the default request (/) checks the login only', async () => {
    const v = await check(ftp({ request: '/', receive: '' }));
    assert.deepEqual([v.up, v.reason], [true, 'FTP login as anonymous ok']);
  });

  it('wrong receive, a missing file and a refused login are down', async () => {
    const wrong = await check(ftp({ receive: 'Welcome' }));
    assert.equal(wrong.up, false);
    assert.match(wrong.reason, /did not match/);
    const missing = await check(ftp({ request: '/nothere.txt' }));
    assert.equal(missing.up, false);
    assert.match(missing.reason, /^RETR \/nothere\.txt: 550/);
    const login = await check(ftp({ login: 'nobody-here', passwd: 'x' }));
    assert.equal(login.up, false);
    assert.match(login.reason, /^(USER|PASS): 530/);
  });

  it('a refused port and a server that never greets are down', async () => {
    const refused = await check(ftp({ port: await freePort() }));
    assert.deepEqual([refused.up, refused.reason], [false, 'connection refused']);
    const silent = await silentServer();
    try {
      const t = await check(ftp({ port: silent.port, negotiateTimeoutMs: 400 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 400 ms']);
    } finally {
      await silent.close();
    }
  });
});
