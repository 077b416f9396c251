import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDovecot, type Dovecot } from '../helpers/imap-server.js';
import { createRepo, numbered, type TestRepo } from '../helpers/git-repo.js';
import { mail } from '../helpers/mail.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

describe('vfio-review rerun <message-id> on mail the store has not seen (real Dovecot)', () => {
  let dovecot: Dovecot;
  let repo: TestRepo;
  let dir: string;
  let diff: string;
  beforeAll(async () => {
    dovecot = await startDovecot();
    repo = await createRepo({ 'drivers/vfio/demo.c': numbered(30) });
    const base = await repo.git('rev-parse', 'HEAD');
    await repo.commit({ 'drivers/vfio/demo.c': numbered(30, { 3: 'three, changed' }) }, 'one');
    diff = await repo.gitRaw('diff', base, 'HEAD');
    await repo.git('reset', '-q', '--hard', base);
    dir = mkdtempSync(join(tmpdir(), 'vr-rerun-imap-'));
  });
  afterAll(async () => {
    await dovecot?.stop();
    await repo?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fetches the message from the configured mailbox, stores it, and checks its series', async () => {
    const [user, pass] = Object.entries(dovecot.users)[0]!;
    await dovecot.append(user, 'lists/vfio', mail({ id: 'other@x', subject: 'Re: unrelated', body: 'Message-ID: <fetch-me@x> in a body does not count.\n' }));
    await dovecot.append(
      user,
      'lists/vfio',
      mail({ id: 'fetch-me@x', subject: '[PATCH] vfio/demo: change three', body: `Change it.\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${diff}-- \n2.43.0\n` }),
    );
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ imap: { host: '127.0.0.1', port: dovecot.port, secure: false, user, mailboxes: ['INBOX', 'lists/vfio'] } }));
    const env = { ...process.env, VFIO_REVIEW_IMAP_PASS: pass };
    const db = join(dir, 'a.db');
    const r = spawnSync(process.execPath, [BIN, 'rerun', '<fetch-me@x>', '--tree', repo.dir, '--config', config, '--db', db, '--json'], { encoding: 'utf8', env, timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/fetched <fetch-me@x> from 127\.0\.0\.1 lists\/vfio \(UID 2\) and stored it/);
    const report = JSON.parse(r.stdout);
    expect(report.series.patches).toEqual(['fetch-me@x']);
    expect(report.apply.status).toBe('applied');
    // Stored once: a second rerun finds it in the store and does not fetch again.
    const again = spawnSync(process.execPath, [BIN, 'rerun', 'fetch-me@x', '--tree', repo.dir, '--config', config, '--db', db, '--json'], { encoding: 'utf8', env, timeout: 120_000 });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/fetched/);
  });

  it('says so when no configured mailbox holds the message', () => {
    const [user, pass] = Object.entries(dovecot.users)[0]!;
    const config = join(dir, 'config2.json');
    writeFileSync(config, JSON.stringify({ imap: { host: '127.0.0.1', port: dovecot.port, secure: false, user, mailboxes: ['lists/vfio'] } }));
    const r = spawnSync(process.execPath, [BIN, 'rerun', 'nowhere@x', '--tree', repo.dir, '--config', config, '--db', join(dir, 'b.db')], {
      encoding: 'utf8', env: { ...process.env, VFIO_REVIEW_IMAP_PASS: pass }, timeout: 120_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/NOT_FOUND.*no configured mailbox holds it/);
  });
});
