import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type Problem } from '@tandem/core';
import { ALL_DIRECTIVES, LD_ERRORS, defaultBackendName, loadConfig, parseConfig, type LdConfig, type ParseEnv } from '@tandem/ldirectord';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

const names = {
  hosts: new Map([
    ['localhost', ['127.0.0.1', '::1']],
    ['web1.example', ['10.0.0.1']],
    ['v6only.example', ['2001:db8::5']],
  ]),
  services: new Map([
    ['http/tcp', 80], ['www/tcp', 80], ['https/tcp', 443], ['domain/udp', 53], ['domain/tcp', 53], ['ftp/tcp', 21], ['mysql/tcp', 3306],
  ]),
};
const env: ParseEnv = { names, hostname: 'director', exists: (p) => p === '/srv/maint', writable: (p) => p.startsWith('/tmp/') };

function parse(text: string, file = 'ld.cf') {
  return parseConfig(text, file, env);
}
function ok(text: string): LdConfig {
  const r = parse(text);
  const errors = r.problems.filter((p) => p.severity === 'error');
  assert.equal(errors.length, 0, `unexpected errors: ${errors.map((p) => `${p.location?.line}: ${p.message}`).join('; ')}`);
  return r.config!;
}
function errs(text: string): Problem[] {
  const r = parse(text);
  assert.equal(r.config, undefined, 'expected the config to be refused');
  return r.problems.filter((p) => p.severity === 'error');
}
function warns(text: string): Problem[] {
  return parse(text).problems.filter((p) => p.severity === 'warning');
}
const V = 'virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n';

describe('ldirectord config: the seed configurations', () => {
  for (const f of readdirSync(`${FIXTURES}/examples/ha.d`).filter((n) => n.startsWith('ldirectord'))) {
    it(`parses ${f} without errors`, () => {
      const file = join(`${FIXTURES}/examples/ha.d`, f);
      const r = parseConfig(readFileSync(file, 'utf8'), file, env);
      assert.ok(r.config, r.problems.map((p) => p.message).join('; '));
      assert.ok(r.config.virtuals.length >= 1);
    });
  }
  it('ldirectord.cf (seed 001): five ipip reals, quiescent, per-virtual fallback, timeouts from checktimeout=3', () => {
    const c = parseConfig(readFileSync(`${FIXTURES}/examples/ha.d/ldirectord.cf`, 'utf8'), 'ldirectord.cf', env).config!;
    const v = c.virtuals[0]!;
    assert.equal(v.id, 'tcp 192.168.136.10:80');
    assert.equal(v.reals.length, 5);
    assert.ok(v.reals.every((r) => r.forwarding === 'ipip' && r.weight === 1));
    assert.equal(v.scheduler, 'rr');
    assert.equal(v.quiescent, true);
    assert.equal(c.global.autoreload, true);
    assert.equal(c.global.checkIntervalMs, 1000);
    assert.deepEqual(v.fallback, { address: '127.0.0.1', port: 80, ipvsPort: 80, forwarding: 'gate' });
    assert.equal(v.checkTimeoutMs, 3000);
    assert.equal(v.negotiateTimeoutMs, 3000, 'negotiatetimeout falls back to checktimeout');
    const spec = v.reals[0]!.check;
    assert.equal(spec.service, 'http');
    assert.equal(spec.request, '/test.html');
    assert.equal(spec.receive, 'Test Page');
    assert.equal(spec.virtualHost, 'www.funbsd.net');
    assert.equal(spec.port, 80);
    assert.equal(v.persistent, undefined, 'the commented-out persistent line is a comment');
  });
});

describe('ldirectord config: global directives', () => {
  it('defaults as ldirectord 4.12 sets them', () => {
    const c = ok(V);
    const g = c.global;
    assert.equal(g.checkIntervalMs, 10_000);
    assert.equal(g.quiescent, false, 'quiescent defaults to no (the man page is wrong)');
    assert.equal(g.readdQuiescent, false);
    assert.equal(g.cleanstop, true);
    assert.equal(g.autoreload, false);
    assert.equal(g.failureCount, 1);
    assert.equal(g.checkCount, 1);
    assert.equal(g.logfile, '/var/log/ldirectord.log');
    assert.deepEqual(g.emailAlertStatus, ['starting', 'running', 'stopping', 'reloading']);
    assert.equal(g.fork, false);
    assert.equal(g.supervised, false);
    const v = c.virtuals[0]!;
    assert.equal(v.checkTimeoutMs, 5000);
    assert.equal(v.negotiateTimeoutMs, 30_000);
    assert.equal(v.scheduler, 'wrr');
    assert.equal(v.checktype, 'negotiate');
    assert.equal(v.service, 'http', 'service defaults by port: 80 is http');
    assert.equal(v.protocol, 'tcp');
  });

  it('reads every global directive', () => {
    const c = ok(`checktimeout=4
negotiatetimeout=20
checkinterval=2
checkcount=3
failurecount=4
fallback=127.0.0.200:8080 masq
fallback6=[::1]:80 gate
fallbackcommand="/usr/local/bin/fb.sh"
autoreload=yes
callback="/usr/local/bin/cb.sh"
logfile="local0"
emailalert="root@localhost, ops@example.com"
emailalertfreq=60
emailalertstatus=starting,running
emailalertfrom=ldirectord@example.com
smtp=mail.example.com
execute=other.cf
execute=third.cf
fork=no
supervised=yes
quiescent=yes
readdquiescent=yes
cleanstop=no
maintenancedir=/srv/maint
${V}`);
    const g = c.global;
    assert.equal(g.checkTimeoutMs, 4000);
    assert.equal(g.negotiateTimeoutMs, 20_000);
    assert.equal(g.checkIntervalMs, 2000);
    assert.equal(g.checkCount, 3);
    assert.equal(g.failureCount, 4);
    assert.equal(g.fallbackCommand, '"/usr/local/bin/fb.sh"', 'a global fallbackcommand keeps its quotes for the shell, as ldirectord');
    assert.equal(g.autoreload, true);
    assert.equal(g.callback, '/usr/local/bin/cb.sh');
    assert.equal(g.logfile, 'local0');
    assert.deepEqual(g.emailAlert, ['root@localhost', 'ops@example.com']);
    assert.equal(g.emailAlertFreqS, 60);
    assert.deepEqual(g.emailAlertStatus, ['starting', 'running']);
    assert.equal(g.emailAlertFrom, 'ldirectord@example.com');
    assert.equal(g.smtp, 'mail.example.com');
    assert.deepEqual(g.execute, ['other.cf', 'third.cf']);
    assert.equal(g.fork, false);
    assert.equal(g.supervised, true);
    assert.equal(g.quiescent, true);
    assert.equal(g.readdQuiescent, true);
    assert.equal(g.cleanstop, false);
    assert.equal(g.maintenanceDir, '/srv/maint');
    const v = c.virtuals[0]!;
    assert.equal(v.quiescent, true);
    assert.equal(v.cleanstop, false);
    assert.equal(v.failureCount, 4);
    assert.equal(v.checkIntervalMs, 2000);
    assert.deepEqual(v.fallback, { address: '127.0.0.200', port: 8080, ipvsPort: 8080, forwarding: 'masq' });
    assert.equal(v.reals[0]!.check.checkCount, 3);
    assert.equal(v.smtp, 'mail.example.com');
  });

  it('bare "supervised" means yes, with a warning', () => {
    const r = parse(`supervised\n${V}`);
    assert.equal(r.config!.global.supervised, true);
    assert.ok(r.problems.some((p) => p.code === 'E_LDCF_COMPAT' && p.location?.line === 1));
  });

  it('a global fallback without port takes each virtual\'s port; fallback6 serves IPv6 virtuals', () => {
    const c = ok(`fallback=127.0.0.200
fallback6=[::1]
virtual=127.0.0.100:80
\treal=127.0.0.11:80 gate
virtual=127.0.0.100:81
\treal=127.0.0.11:81 gate
\tfallback=127.0.0.201:8081 masq
virtual6=[::1]:443
\treal6=[::1]:8443 masq
`);
    assert.deepEqual(c.virtuals.map((v) => v.fallback && `${v.fallback.address}:${v.fallback.port}/${v.fallback.forwarding}`), ['127.0.0.200:80/gate', '127.0.0.201:8081/masq', '::1:443/gate']);
  });

  it('logfile: a path or a syslog facility; anything else is an error with a did-you-mean', () => {
    assert.equal(ok(`logfile="/var/log/x.log"\n${V}`).global.logfile, '/var/log/x.log');
    const e = errs(`logfile="locla0"\n${V}`);
    assert.equal(e[0]!.code, 'E_LDCF_FILE');
    assert.match(e[0]!.hint!, /local0/);
  });

  it('emailalertstatus: none cannot be combined; unknown states are named', () => {
    assert.deepEqual(ok(`emailalertstatus=none\n${V}`).global.emailAlertStatus, []);
    const e = errs(`emailalertstatus=none,starting\n${V}`);
    assert.equal(e[0]!.code, 'E_LDCF_EMAILSTATUS');
    assert.match(e[0]!.message, /"starting" specified with "none"/);
    assert.match(errs(`emailalertstatus=runing\n${V}`)[0]!.hint!, /running/);
  });

  it('maintenancedir that does not exist is a warning, as in ldirectord', () => {
    const w = warns(`maintenancedir=/nonexistent/dir\n${V}`);
    assert.ok(w.some((p) => p.code === 'E_LDCF_FILE' && /does not exist/.test(p.message)));
  });

  it('fork=yes is accepted and said to have no effect', () => {
    assert.ok(warns(`fork=yes\n${V}`).some((p) => p.code === 'E_LDCF_NO_EFFECT'));
  });
});

describe('ldirectord config: virtual sections', () => {
  it('reads every section directive', () => {
    const c = ok(`virtual=127.0.0.100:8080
\treal=127.0.0.11:8080 masq 3
\tservice=https
\tchecktype=negotiate
\tcheckport=8443
\tcheckcommand="/usr/local/bin/check"
\tcheckinterval=3
\tchecktimeout=2
\tnegotiatetimeout=7
\tcheckcount=2
\tfailurecount=3
\trequest="health"
\treceive="OK.*"
\thttpmethod=head
\tvirtualhost=www.example.com
\tlogin="user"
\tpasswd="secret pw"
\tdatabase="db"
\tsecret="radius-secret"
\tscheduler=sh
\tpersistent=300
\tnetmask=255.255.255.0
\tschedflags=sh-port,sh-fallback
\tprotocol=tcp
\tops=no
\tquiescent=yes
\tcleanstop=no
\temailalert=ops@example.com
\temailalertfreq=30
\temailalertstatus=all
\tsmtp=mx.example.com
\tfallback=127.0.0.1:80 gate
\tfallbackcommand="/bin/fb"
\tmonitorfile="/tmp/monitor.log"
\tservicename=Web shop
\tcomment="front end"
\tload="x"
`);
    const v = c.virtuals[0]!;
    const s = v.reals[0]!.check;
    assert.equal(v.service, 'https');
    assert.equal(s.port, 8443);
    assert.equal(s.checkcommand, '/usr/local/bin/check');
    assert.equal(v.checkIntervalMs, 3000, 'a per-virtual checkinterval is honoured');
    assert.equal(s.checkTimeoutMs, 2000);
    assert.equal(s.negotiateTimeoutMs, 7000);
    assert.equal(s.checkCount, 2);
    assert.equal(v.failureCount, 3);
    assert.equal(s.request, '/health', 'a leading / is added, as ldirectord does');
    assert.equal(s.receive, 'OK.*');
    assert.equal(s.httpMethod, 'HEAD');
    assert.equal(s.virtualHost, 'www.example.com');
    assert.equal(s.login, 'user');
    assert.equal(s.passwd, 'secret pw');
    assert.equal(s.database, 'db');
    assert.equal(s.secret, 'radius-secret');
    assert.equal(v.scheduler, 'sh');
    assert.equal(v.persistent, 300);
    assert.equal(v.netmask, '255.255.255.0');
    assert.deepEqual(v.schedFlags, ['sh-port', 'sh-fallback']);
    assert.equal(v.ops, false);
    assert.equal(v.quiescent, true);
    assert.equal(v.cleanstop, false);
    assert.deepEqual(v.emailAlert, ['ops@example.com']);
    assert.equal(v.emailAlertFreqS, 30);
    assert.equal(v.smtp, 'mx.example.com');
    assert.equal(v.fallbackCommand, '/bin/fb', 'per-virtual quotes are stripped, as ldirectord');
    assert.equal(v.monitorfile, '/tmp/monitor.log');
    assert.equal(v.servicename, 'Web shop');
    assert.equal(v.comment, 'front end');
    assert.equal(v.load, 'x');
  });

  it('virtual= forms: ip:port, [v6]:port, virtual6=, hostname:service, fwmark, udp on port 53', () => {
    const c = ok(`virtual=127.0.0.100:80
\treal=127.0.0.11 gate
virtual=[::1]:80
\treal=[::1]:8080 masq
virtual6=[2001:DB8::0001]:443
\treal6=[2001:db8::2]:443 gate
virtual=localhost:http
\treal=localhost:www gate
virtual=5
\treal=127.0.0.12:8080 masq
virtual6=6
\treal=[::1]:80 gate
virtual=127.0.0.100:53
\treal=127.0.0.11:53 gate
\tops=yes
virtual=127.0.0.100:domain
\treal=127.0.0.12:53 gate
\tprotocol=tcp
`);
    assert.deepEqual(c.virtuals.map((v) => v.id), [
      'tcp 127.0.0.100:80', 'tcp [::1]:80', 'tcp [2001:db8::1]:443', 'tcp 127.0.0.1:80', 'fwm 5', 'fwm 6 inet6', 'udp 127.0.0.100:53', 'tcp 127.0.0.100:53',
    ]);
    assert.equal(c.virtuals[4]!.service, 'none', 'fwmark virtuals have no default service');
    assert.equal(c.virtuals[6]!.service, 'dns');
    assert.equal(c.virtuals[6]!.ops, true);
    assert.equal(c.virtuals[4]!.reals[0]!.check.virtualAddress, '5');
    assert.equal(c.virtuals[4]!.reals[0]!.check.virtualPort, 0);
  });

  it('real= forms: port omitted, service names, weight, per-real request/receive, thresholds', () => {
    const c = ok(`virtual=127.0.0.100:80
\treal=127.0.0.11 gate
\treal=127.0.0.12 masq
\treal=127.0.0.13:www ipip 0
\treal=127.0.0.14:80 masq 5 "other.html", "Other"
\treal=127.0.0.15:80 masq 1 l:2 u:10
\treal=127.0.0.16:80 gate 2 "http://127.0.0.16:8080/x" "y"
\treal=web1.example:8080 masq
`);
    const r = c.virtuals[0]!.reals;
    assert.deepEqual(r.map((x) => [x.address, x.port, x.ipvsPort, x.forwarding, x.weight]), [
      ['127.0.0.11', 0, 80, 'gate', 1],
      ['127.0.0.12', 0, 0, 'masq', 1],
      ['127.0.0.13', 80, 80, 'ipip', 0],
      ['127.0.0.14', 80, 80, 'masq', 5],
      ['127.0.0.15', 80, 80, 'masq', 1],
      ['127.0.0.16', 80, 80, 'gate', 2],
      ['10.0.0.1', 8080, 8080, 'masq', 1],
    ]);
    assert.equal(r[0]!.check.port, 80, 'no port: the service\'s well-known port is checked');
    assert.equal(r[0]!.check.realPort, 0);
    assert.equal(r[3]!.check.request, '/other.html');
    assert.equal(r[3]!.check.receive, 'Other');
    assert.deepEqual([r[4]!.lowerThreshold, r[4]!.upperThreshold], [2, 10]);
    assert.equal(r[5]!.check.request, '/http://127.0.0.16:8080/x');
    assert.equal(r[6]!.check.port, 8080);
    assert.equal(r[0]!.id, 'tcp 127.0.0.100:80/127.0.0.11:0');
  });

  it('checktype N is "combined" with N connect checks; on/off/ping/external/external-perl/connect', () => {
    const types = ['connect', 'negotiate', 'ping', 'external', 'external-perl', 'on', 'off'];
    for (const t of types) assert.equal(ok(`${V}\tchecktype=${t}\n`).virtuals[0]!.checktype, t);
    const v = ok(`${V}\tchecktype=3\n`).virtuals[0]!;
    assert.equal(v.checktype, 'combined');
    assert.equal(v.reals[0]!.check.combinedConnects, 3);
    assert.equal(ok(`${V}\tchecktype=external\n`).virtuals[0]!.reals[0]!.check.checkcommand, '/bin/true', 'external defaults to /bin/true');
  });

  it('the timeout fallback chain: virtual check → virtual negotiate → global check → global negotiate → 5 / 30', () => {
    const t = (g: string, s: string) => {
      const v = ok(`${g}${V}${s}`).virtuals[0]!;
      return [v.checkTimeoutMs, v.negotiateTimeoutMs];
    };
    assert.deepEqual(t('', ''), [5000, 30_000]);
    assert.deepEqual(t('checktimeout=1\n', ''), [1000, 1000]);
    assert.deepEqual(t('negotiatetimeout=9\n', ''), [9000, 9000]);
    assert.deepEqual(t('checktimeout=1\nnegotiatetimeout=9\n', ''), [1000, 9000]);
    assert.deepEqual(t('checktimeout=1\n', '\tnegotiatetimeout=4\n'), [4000, 4000]);
    assert.deepEqual(t('negotiatetimeout=9\n', '\tchecktimeout=2\n'), [2000, 2000]);
  });

  it('service=ftp and sip fill in the login ldirectord uses', () => {
    const ftp = ok(`${V}\tservice=ftp\n`).virtuals[0]!.reals[0]!.check;
    assert.deepEqual([ftp.login, ftp.passwd], ['anonymous', 'ldirectord@director']);
    const ftp2 = ok(`${V}\tlogin="bob"\n\tservice=ftp\n`).virtuals[0]!.reals[0]!.check;
    assert.equal(ftp2.login, 'bob');
    assert.equal(ok(`${V}\tservice=sip\n`).virtuals[0]!.reals[0]!.check.login, 'ldirectord@director');
  });

  it('service defaults by port, and service=none with negotiate gets a warning (it never fails)', () => {
    const ports: [number, string][] = [[21, 'ftp'], [25, 'smtp'], [110, 'pop'], [143, 'imap'], [389, 'ldap'], [443, 'https'], [3306, 'mysql'], [5432, 'pgsql'], [8080, 'none']];
    for (const [p, s] of ports) assert.equal(ok(`virtual=127.0.0.100:${p}\n\treal=127.0.0.11 gate\n`).virtuals[0]!.service, s, String(p));
    assert.ok(warns('virtual=127.0.0.100:8080\n\treal=127.0.0.11 gate\n').some((p) => p.code === 'E_LDCF_NO_EFFECT' && p.location?.line === 1));
  });
});

describe('ldirectord config: address ranges', () => {
  it('a.b.c.d->a.b.c.e expands to every address', () => {
    const r = ok('virtual=127.0.0.100:80\n\treal=127.0.0.11->127.0.0.14:80 masq 2\n').virtuals[0]!.reals;
    assert.deepEqual(r.map((x) => `${x.address}:${x.port}/${x.weight}`), ['127.0.0.11:80/2', '127.0.0.12:80/2', '127.0.0.13:80/2', '127.0.0.14:80/2']);
  });
  it('ldirectord bug §8-11 fixed: a range across a digit boundary expands numerically (ldirectord yields none)', () => {
    const r = ok('virtual=127.0.0.100:80\n\treal=5.245.224.254->5.245.225.1:80 masq\n').virtuals[0]!.reals;
    assert.deepEqual(r.map((x) => x.address), ['5.245.224.254', '5.245.224.255', '5.245.225.0', '5.245.225.1']);
  });
  it('ldirectord bug §8-11 fixed: 192.168.1.[1-5] is a range (ldirectord makes one real 0.0.0.80)', () => {
    const r = ok('virtual=127.0.0.100:80\n\treal=127.0.0.[11-13]:80 gate\n').virtuals[0]!.reals;
    assert.deepEqual(r.map((x) => `${x.address}:${x.port}`), ['127.0.0.11:80', '127.0.0.12:80', '127.0.0.13:80']);
    const r2 = ok('virtual=127.0.0.100:80\n\treal=10.0.[1-2].[5-6] masq\n').virtuals[0]!.reals;
    assert.deepEqual(r2.map((x) => x.address), ['10.0.1.5', '10.0.1.6', '10.0.2.5', '10.0.2.6']);
  });
  it('reversed, oversized and mixed ranges are errors naming the line', () => {
    for (const bad of ['127.0.0.14->127.0.0.11', '127.0.0.[13-11]', '10.[0-255].[0-255].[0-255]', '127.0.0.1->::1', '127.0.0.[11-300]']) {
      const e = errs(`virtual=127.0.0.100:80\n\treal=${bad}:80 gate\n`);
      assert.equal(e[0]!.code, 'E_LDCF_RANGE', bad);
      assert.equal(e[0]!.location!.line, 2);
    }
  });
});

describe('ldirectord config: errors name file, line and directive, all at once', () => {
  const cases: [string, string, string, number, RegExp?][] = [
    ['unknown global', `checkinterval=1\nfoo=bar\n${V}`, 'E_LDCF_UNKNOWN_DIRECTIVE', 2],
    ['unknown in section', `${V}\tchekport=80\n`, 'E_LDCF_UNKNOWN_DIRECTIVE', 3, /checkport/],
    ['connecttimeout refused', `connecttimeout=5\n${V}`, 'E_LDCF_DEPRECATED', 1, /negotiatetimeout/],
    ['connecttimeout in a section too', `${V}\tconnecttimeout=5\n`, 'E_LDCF_DEPRECATED', 3],
    ['timeout refused', `timeout=5\n${V}`, 'E_LDCF_DEPRECATED', 1, /checktimeout and negotiatetimeout/],
    ['checktimeout=0', `checktimeout=0\n${V}`, 'E_LDCF_NUMBER', 1],
    ['checkinterval not a number', `checkinterval=often\n${V}`, 'E_LDCF_NUMBER', 1],
    ['quiescent=maybe', `quiescent=maybe\n${V}`, 'E_LDCF_BOOL', 1],
    ['service=HTTPX', `${V}\tservice=htp\n`, 'E_LDCF_SERVICE', 3, /http/],
    ['checktype=tcp', `${V}\tchecktype=tcp\n`, 'E_LDCF_CHECKTYPE', 3, /connect/],
    ['checktype=negotiate_connect', `${V}\tchecktype=negotiate_connect\n`, 'E_LDCF_CHECKTYPE', 3],
    ['duplicate virtual', `${V}virtual=127.0.0.100:80\n\treal=127.0.0.12:80 gate\n`, 'E_LDCF_DUPLICATE_VIRTUAL', 3],
    ['bad forward method', 'virtual=127.0.0.100:80\n\treal=127.0.0.11:80 route\n', 'E_LDCF_FORWARD', 2, /gate/],
    ['missing forward method', 'virtual=127.0.0.100:80\n\treal=127.0.0.11:80\n', 'E_LDCF_FORWARD', 2],
    ['uppercase scheduler', `${V}\tscheduler=WRR\n`, 'E_LDCF_SCHEDULER', 3, /wrr/],
    ['real6 in an IPv4 virtual', 'virtual=127.0.0.100:80\n\treal6=[::1]:80 gate\n', 'E_LDCF_NOT_HERE', 2],
    ['IPv6 real in an IPv4 virtual', 'virtual=127.0.0.100:80\n\treal=[::1]:80 gate\n', 'E_LDCF_HOST', 2],
    ['unresolvable host', 'virtual=127.0.0.100:80\n\treal=nosuchhost.invalid:80 gate\n', 'E_LDCF_HOST', 2],
    ['unknown service name', 'virtual=127.0.0.100:nosuchservice\n\treal=127.0.0.11 gate\n', 'E_LDCF_SERVICE_NAME', 1],
    ['bad virtual', 'virtual=127.0.0.100\n\treal=127.0.0.11 gate\n', 'E_LDCF_VIRTUAL', 1],
    ['virtual6 without brackets', 'virtual6=::1:80\n\treal=[::1] gate\n', 'E_LDCF_VIRTUAL', 1],
    ['port out of range', 'virtual=127.0.0.100:80\n\treal=127.0.0.11:70000 gate\n', 'E_LDCF_NUMBER', 2],
    ['checkport 0', `${V}\tcheckport=0\n`, 'E_LDCF_NUMBER', 3],
    ['global-only directive in a section', `${V}\tautoreload=yes\n`, 'E_LDCF_NOT_HERE', 3, /column 0/],
    ['section directive as a global', `request="/x"\n${V}`, 'E_LDCF_NOT_HERE', 1],
    ['indented section line before any virtual', `\treal=127.0.0.11:80 gate\n${V}`, 'E_LDCF_INDENT', 1],
    ['protocol=fwm on an address', `${V}\tprotocol=fwm\n`, 'E_LDCF_PROTOCOL', 3],
    ['protocol=tcp on a fwmark', 'virtual=5\n\treal=127.0.0.11 gate\n\tprotocol=tcp\n', 'E_LDCF_PROTOCOL', 3],
    ['protocol=sctp', `${V}\tprotocol=sctp\n`, 'E_LDCF_PROTOCOL', 3],
    ['netmask not a mask', `${V}\tpersistent=60\n\tnetmask=255.255.0\n`, 'E_LDCF_NETMASK', 4],
    ['IPv6 netmask not a prefix', 'virtual6=[::1]:80\n\treal=[::1]:81 masq\n\tpersistent=60\n\tnetmask=255.255.255.0\n', 'E_LDCF_NETMASK', 4],
    ['httpmethod=POST', `${V}\thttpmethod=POST\n`, 'E_LDCF_HTTPMETHOD', 3],
    ['unterminated quote', `${V}\trequest="/index.html\n`, 'E_LDCF_QUOTE', 3],
    ['duplicate real', `${V}\treal=127.0.0.11:80 masq\n`, 'E_LDCF_DUPLICATE_REAL', 3],
    ['gate real that IPVS would store twice', 'virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\treal=127.0.0.11:8080 gate\n', 'E_LDCF_DUPLICATE_REAL', 3, /virtual port/],
    ['fallback that is also a real', `${V}\tfallback=127.0.0.11:80\n`, 'E_LDCF_DUPLICATE_REAL', 3],
    ['monitorfile not writable', `${V}\tmonitorfile="/proc/nope"\n`, 'E_LDCF_FILE', 3],
    ['stray word', `${V}\treal=127.0.0.12:80 gate 1 bogus\n`, 'E_LDCF_REAL', 3],
    ['directive without =', `${V}\tscheduler\n`, 'E_LDCF_SYNTAX', 3],
    ['schedflags garbage', `${V}\tschedflags=sh port!\n`, 'E_LDCF_SYNTAX', 3],
    ['per-real request without receive', `virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate 1 "x.html"\n`, 'E_LDCF_REAL', 2],
    ['weight too large', 'virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate 70000\n', 'E_LDCF_NUMBER', 2],
    ['failurecount 0', `failurecount=0\n${V}`, 'E_LDCF_NUMBER', 1],
    ['fwmark out of range', 'virtual=0\n\treal=127.0.0.11 gate\n', 'E_LDCF_VIRTUAL', 1],
  ];
  for (const [name, text, code, line, hint] of cases) {
    it(`${name} → ${code} at line ${line}`, () => {
      const e = errs(text);
      const p = e.find((x) => x.code === code);
      assert.ok(p, `expected ${code}, got ${e.map((x) => `${x.code}@${x.location?.line}: ${x.message}`).join('; ')}`);
      assert.equal(p.location?.file, 'ld.cf');
      assert.equal(p.location?.line, line);
      assert.ok(p.location?.directive, 'the directive is named');
      if (hint) assert.match(`${p.message} ${p.hint ?? ''}`, hint);
      assert.ok(Object.hasOwn(LD_ERRORS, p.code), `${p.code} is in the catalog`);
    });
  }

  it('collects every problem of a file, in file order', () => {
    const e = errs(`foo=1\nquiescent=maybe\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 route\n\tchecktype=tcp\n\tbogus=1\n`);
    assert.deepEqual(e.map((p) => [p.location!.line, p.code]), [
      [1, 'E_LDCF_UNKNOWN_DIRECTIVE'], [2, 'E_LDCF_BOOL'], [4, 'E_LDCF_FORWARD'], [5, 'E_LDCF_CHECKTYPE'], [6, 'E_LDCF_UNKNOWN_DIRECTIVE'],
    ]);
  });

  it('did you mean: close misspellings are suggested, far ones are not', () => {
    assert.match(errs(`quiscent=yes\n${V}`)[0]!.hint!, /did you mean quiescent/);
    assert.match(errs(`${V}\tvirtualhst=x\n`)[0]!.hint!, /did you mean virtualhost/);
    assert.doesNotMatch(errs(`zzzzzzzz=1\n${V}`)[0]!.hint ?? '', /did you mean/);
  });

  it('loadConfig throws one ConfigError carrying every problem, with file and line in the report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ldcf-'));
    const file = join(dir, 'bad.cf');
    writeFileSync(file, `checkinterval=x\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gat\n`);
    await assert.rejects(loadConfig(file, env), (e: ConfigError) => {
      assert.equal(e.code, 'E_CONF_INVALID');
      assert.equal(e.problems.filter((p) => p.severity === 'error').length, 2);
      assert.match(e.report(), new RegExp(`${file}:1: checkinterval: .*\\[E_LDCF_NUMBER\\]`));
      assert.match(e.report(), new RegExp(`${file}:3: real: .*did you mean gate.*\\[E_LDCF_FORWARD\\]`));
      return true;
    });
  });

  it('every directive of the table is known to the parser, and every catalog code is documented in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const d of ALL_DIRECTIVES) assert.match(readme, new RegExp('`' + d + '`'), `README documents ${d}`);
    for (const code of Object.keys(LD_ERRORS)) assert.match(readme, new RegExp(code), `README documents ${code}`);
  });
});

describe('ldirectord config: ldirectord 4.12 quirks (reference/ldirectord-runs/parse_quirks)', () => {
  it('a blank line inside a section is tolerated (ldirectord: Unknown command), with a warning', () => {
    const r = parse('checkinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\n\treal=127.0.0.12:80 gate\n');
    assert.equal(r.config!.virtuals[0]!.reals.length, 2);
    assert.ok(r.problems.some((p) => p.code === 'E_LDCF_COMPAT' && p.location?.line === 5 && /blank line 4/.test(p.message)));
  });
  it('trailing comments: stripped in sections as ldirectord does; on globals tandem strips " #..." too', () => {
    const c = ok('checkinterval=1 # every second\nquiescent=yes # x\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate 3   # comment here is stripped\n\tchecktype=on # and here\n');
    assert.equal(c.global.checkIntervalMs, 1000);
    assert.equal(c.global.quiescent, true);
    assert.equal(c.virtuals[0]!.reals[0]!.weight, 3);
    assert.equal(c.virtuals[0]!.checktype, 'on');
  });
  it('a "#" inside a quoted request is kept (ldirectord cuts the line and fails)', () => {
    const r = parse('virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\trequest="/index.html#frag"\n');
    assert.equal(r.config!.virtuals[0]!.reals[0]!.check.request, '/index.html#frag');
    assert.ok(r.problems.some((p) => p.code === 'E_LDCF_COMPAT' && p.location?.line === 3));
  });
  it('a three-space indent is accepted with a warning; an indented global before any section too', () => {
    const r = parse('  checkinterval=1\nvirtual=127.0.0.100:80\n   real=127.0.0.11:80 gate\n');
    assert.equal(r.config!.virtuals[0]!.reals.length, 1);
    assert.equal(r.config!.global.checkIntervalMs, 1000);
    assert.deepEqual(r.problems.filter((p) => p.code === 'E_LDCF_COMPAT').map((p) => p.location!.line), [1, 3]);
  });
  it('spaces around = are fine', () => {
    const c = ok('checkinterval = 1\nquiescent = yes\nvirtual = 127.0.0.100:80\n\treal = 127.0.0.11:80 gate 2\n\tchecktype = on\n');
    assert.equal(c.virtuals[0]!.reals[0]!.weight, 2);
  });
  it('yes/no in another case and unquoted request are accepted with a warning', () => {
    const r = parse('quiescent=Yes\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\trequest=index.html\n');
    assert.equal(r.config!.global.quiescent, true);
    assert.equal(r.config!.virtuals[0]!.reals[0]!.check.request, '/index.html');
    assert.deepEqual(r.problems.filter((p) => p.code === 'E_LDCF_COMPAT').map((p) => p.location!.line), [1, 4]);
  });
  it('numbers with junk take the leading digits, as ldirectord, with a warning; units and fractions are tandem extensions', () => {
    const r = parse(`checkinterval=2x\nchecktimeout=500ms\nnegotiatetimeout=1.5\n${V}`);
    assert.equal(r.config!.global.checkIntervalMs, 2000);
    assert.equal(r.config!.global.checkTimeoutMs, 500);
    assert.equal(r.config!.global.negotiateTimeoutMs, 1500);
    assert.deepEqual(r.problems.filter((p) => p.code === 'E_LDCF_COMPAT').map((p) => p.location!.line), [1, 2, 3]);
  });
  it('same ip:port for tcp and udp is two virtuals; a netmask without persistent is noted', () => {
    const c = ok(`${V}virtual=127.0.0.100:80\n\treal=127.0.0.12:80 gate\n\tprotocol=udp\n`);
    assert.deepEqual(c.virtuals.map((v) => v.id), ['tcp 127.0.0.100:80', 'udp 127.0.0.100:80']);
    assert.ok(warns(`${V}\tnetmask=255.255.255.0\n`).some((p) => p.code === 'E_LDCF_NO_EFFECT'));
  });
  it('a virtual without reals is fine (sh with flags)', () => {
    const v = ok('virtual=127.0.0.100:80\n\tchecktype=on\n\tscheduler=sh\n\tschedflags=sh-port\n').virtuals[0]!;
    assert.deepEqual([v.reals.length, v.scheduler, v.schedFlags], [0, 'sh', ['sh-port']]);
  });
  it('the parsed config is frozen', () => {
    const c = ok(V);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.virtuals[0]) && Object.isFrozen(c.virtuals[0]!.reals[0]!.check));
  });
  it('real ids are stable across parses and independent of line numbers', () => {
    const a = ok(`checkinterval=1\n${V}`).virtuals[0]!.reals[0]!.id;
    const b = ok(`\n\n${V}`).virtuals[0]!.reals[0]!.id;
    assert.equal(a, b);
  });
});

describe('ldirectord backend choice', () => {
  it('ipvsadm only when the command and kernel IPVS are both there, else the embedded balancer', () => {
    const has = (...paths: string[]) => (p: string) => paths.includes(p);
    assert.equal(defaultBackendName(has('/sbin/ipvsadm', '/proc/net/ip_vs')), 'ipvsadm');
    assert.equal(defaultBackendName(has('/usr/sbin/ipvsadm', '/sys/module/ip_vs')), 'ipvsadm');
    assert.equal(defaultBackendName(has('/usr/sbin/ipvsadm'), () => false), 'embedded', 'ipvsadm without kernel IPVS (this machine)');
    assert.equal(defaultBackendName(has('/proc/net/ip_vs')), 'embedded', 'no ipvsadm command');
  });
});
