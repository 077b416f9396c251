import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mail, patchBody } from '../helpers/mail.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'src/cli/bin.js');
/** A hand-written series with a review reply carrying a trailer. */
const EXAMPLE = join(ROOT, 'test/fixtures/mbox/cli-series-trailers.mbox');

function cli(args: string[], cwd = ROOT): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('vfio-review CLI', () => {
  let dir: string;
  let db: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vr-cli-'));
    db = join(dir, 'x.db');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ingest --json prints a one-line summary', () => {
    const r = cli(['ingest', '--mbox', EXAMPLE, '--db', db, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ seen: 4, new: 4, failed: 0, series: 1, complete: 1, relevant: 1 });
  });

  it('ingesting the same file again stores nothing twice', () => {
    const r = cli(['ingest', '--mbox', EXAMPLE, '--db', db, '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ seen: 4, new: 0, duplicate: 4 });
  });

  it('series --json gives one object per series version in the documented shape', () => {
    const r = cli(['series', '--json', '--db', db]);
    expect(r.status).toBe(0);
    const [s, ...rest] = JSON.parse(r.stdout);
    expect(rest).toEqual([]);
    expect(s).toMatchObject({
      id: 1,
      subject: '[PATCH 0/2] vfio/demo: register the parent after setup',
      version: 1,
      cover: 'demo-v1-0@example.org',
      patches: ['demo-v1-1@example.org', 'demo-v1-2@example.org'],
      total: 2,
      complete: true,
      lineage: 1,
      baseCommit: '0000000000000000000000000000000000000000',
      relevant: true,
      trailers: [{ patch: 1, name: 'Reviewed-by', value: 'Rey Viewer <rey@example.org>', from: 'demo-rev-1@example.org', origin: 'reply' }],
    });
  });

  it('stats --json counts messages, threads, series, patches and parse errors', () => {
    const s = JSON.parse(cli(['stats', '--json', '--db', db]).stdout);
    expect(s).toMatchObject({ messages: 4, threads: 1, series: 1, patches: 2, parseErrors: 0 });
  });

  it('show prints the message, its thread and its series, taking <id> or a lore URL', () => {
    const a = cli(['show', '<demo-v1-2@example.org>', '--db', db]);
    expect(a.status).toBe(0);
    expect(a.stdout).toContain('* [PATCH 2/2] vfio/demo: set the state before registering');
    expect(a.stdout).toContain('Series 1: v1 complete');
    const b = cli(['show', 'https://lore.kernel.org/all/demo-v1-2@example.org/', '--db', db, '--json']);
    expect(JSON.parse(b.stdout).series[0].id).toBe(1);
  });

  it('reads a Maildir', () => {
    const md = join(dir, 'Maildir');
    for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(md, d), { recursive: true });
    writeFileSync(join(md, 'new', '1.eml'), mail({ id: 'md1@x', subject: '[PATCH] iommu: from a maildir', body: patchBody('drivers/iommu/x.c') }));
    const r = cli(['ingest', '--maildir', md, '--db', db, '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ seen: 1, new: 1 });
  });

  it('says clearly what is wrong with a command line or a Message-ID', () => {
    expect(cli(['ingest', '--db', db]).status).toBe(2);
    expect(cli(['nonsense']).status).toBe(2);
    const r = cli(['show', 'nope@nowhere', '--db', db]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/NOT_FOUND: no message <nope@nowhere>/);
    const m = cli(['ingest', '--mbox', join(dir, 'missing.mbox'), '--db', db]);
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/MBOX_READ/);
  });

  it('npm start (demo) writes the default database in the working directory', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'vr-demo-'));
    const r = cli(['demo', '--no-serve'], cwd);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\d+ new replies printed above/);
    expect(existsSync(join(cwd, 'vfio-review.db'))).toBe(true);
    rmSync(cwd, { recursive: true, force: true });
  });
});
