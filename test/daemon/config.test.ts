/** The `daemon` section of the configuration: defaults -> file -> environment -> flags, frozen, secrets from the environment. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { parseDaemonConfig } from '../../src/config/daemon.js';
import { VrError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vr-daemon-config-'));
let n = 0;
function file(json: unknown): string {
  const f = join(dir, `c${++n}.json`);
  writeFileSync(f, JSON.stringify(json));
  return f;
}
const source = { host: 'imap.example.org', user: 'bot', mailboxes: ['lists/kvm', 'lists/iommu'] };

describe('daemon configuration', () => {
  it('has defaults without a daemon section', () => {
    const d = loadConfig({ env: {} }).daemon;
    expect(d).toEqual({
      sources: [], waitSeconds: 600, workers: availableParallelism(), sinks: null, leaseSeconds: 60, maxAttempts: 5, retrySeconds: 60,
      deliverSeconds: 30, tickMs: 2000, shutdownGraceSeconds: 20, maxAgeDays: 14, checkpatch: true, logLevel: 'info',
      warmPaths: ['drivers/vfio/vfio_main.c', 'drivers/vfio/pci/vfio_pci_core.c', 'drivers/iommu/iommu.c'],
      warmDirs: ['drivers/vfio', 'drivers/iommu'],
    });
    expect(Object.isFrozen(d)).toBe(true);
    expect(Object.isFrozen(d.sources)).toBe(true);
  });

  it('layers file, then environment, then flags', () => {
    const f = file({ daemon: { workers: 3, waitSeconds: 120, logLevel: 'warn', sinks: ['email', 'github', 'email'], maxAgeDays: null } });
    expect(loadConfig({ file: f, env: {} }).daemon).toMatchObject({ workers: 3, waitSeconds: 120, logLevel: 'warn', sinks: ['email', 'github'], maxAgeDays: null });
    const env = { VFIO_REVIEW_WORKERS: '5', VFIO_REVIEW_WAIT_SECONDS: '30', VFIO_REVIEW_LOG_LEVEL: 'debug' };
    expect(loadConfig({ file: f, env }).daemon).toMatchObject({ workers: 5, waitSeconds: 30, logLevel: 'debug' });
    expect(loadConfig({ file: f, env, flags: { daemon: { workers: 1, waitSeconds: 0, logLevel: 'error' } } }).daemon).toMatchObject({
      workers: 1, waitSeconds: 0, logLevel: 'error',
    });
  });

  it('reads each source password from the variable it names, and refuses one in the file', () => {
    const f = file({ daemon: { sources: [{ ...source, port: 143, secure: false }, { ...source, name: 'second', host: 'other.example.org', passwordEnv: 'OTHER_PASS' }] } });
    const d = loadConfig({ file: f, env: { VFIO_REVIEW_IMAP_PASS: 's3cret' } }).daemon;
    expect(d.sources.map((s) => [s.name, s.imap.port, s.imap.secure, s.imap.auth.pass, s.passwordMissing])).toEqual([
      ['bot@imap.example.org:143', 143, false, 's3cret', false],
      ['second', 993, true, '', true],
    ]);
    expect(d.sources[0]!.imap.mailboxes).toEqual(['lists/kvm', 'lists/iommu']);
    expect(() => loadConfig({ file: file({ daemon: { sources: [{ ...source, password: 'x' }] } }), env: {} })).toThrow(/password does not belong in the file/);
  });

  it('falls back to the top-level imap section as the one source', () => {
    const f = file({ imap: { host: 'imap.example.org', user: 'bot', mailboxes: ['INBOX'] } });
    const d = loadConfig({ file: f, env: { VFIO_REVIEW_IMAP_PASS: 'pw' } }).daemon;
    expect(d.sources).toHaveLength(1);
    expect(d.sources[0]).toMatchObject({ name: 'bot@imap.example.org:993', passwordMissing: false, imap: { host: 'imap.example.org', mailboxes: ['INBOX'] } });
  });

  it.each([
    [{ workers: 0 }, /workers/],
    [{ workers: 1.5 }, /workers must be a whole number/],
    [{ waitSeconds: -1 }, /waitSeconds/],
    [{ sinks: ['fax'] }, /'fax' is not one of/],
    [{ sinks: [] }, /sinks must be a non-empty array/],
    [{ logLevel: 'loud' }, /logLevel/],
    [{ sources: [{ host: 'h' }] }, /sources\[0\]\.user/],
    [{ sources: [{ ...source, mailboxes: [] }] }, /mailboxes must be a non-empty array/],
    [{ sources: [{ ...source }, { ...source }] }, /same name/],
    [{ sources: [{ ...source, passwordEnv: 'lower case' }] }, /passwordEnv/],
    [{ checkpatch: 'yes' }, /checkpatch/],
    [{ warmPaths: ['../etc/passwd'] }, /warmPaths/],
    [{ warmDirs: ['drivers/../..'] }, /warmDirs/],
  ])('refuses %j', (daemon, message) => {
    let err: unknown;
    try {
      parseDaemonConfig(daemon, { env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VrError);
    expect((err as VrError).code).toBe('CONFIG_INVALID');
    expect((err as VrError).message).toMatch(message);
  });

  it('refuses bad environment numbers instead of ignoring them', () => {
    expect(() => parseDaemonConfig({}, { env: { VFIO_REVIEW_WORKERS: 'many' } })).toThrow(/VFIO_REVIEW_WORKERS must be a number/);
    expect(() => parseDaemonConfig({}, { env: { VFIO_REVIEW_WORKERS: '0' } })).toThrow(/workers must be a whole number >= 1/);
  });
});
