import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'src/cli/bin.js');
const MBOX = join(ROOT, 'examples/demo-series.mbox');

/** The child's environment: no database or tree override from whoever runs the suite. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['VFIO_REVIEW_DB', 'VFIO_REVIEW_TREE', 'VFIO_REVIEW_WEB_TOKEN']) delete env[k];
  return env;
}

function demo(cwd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'demo', ...args], { cwd, encoding: 'utf8', env: childEnv(), timeout: 110_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `git show COMMIT:PATH` in the demo tree, with no user or system configuration. */
function show(tree: string, commit: string, path: string): string[] {
  return execFileSync('git', [`--git-dir=${join(tree, '.git')}`, 'show', `${commit}:${path}`], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tree, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
  }).split('\n');
}

describe('npm start (vfio-review demo)', () => {
  let dir: string;
  let db: string;
  let first: ReturnType<typeof demo>;
  let tree: string;
  let commit: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vr-demo-'));
    db = join(dir, 'demo.db');
    first = demo(dir, ['--no-serve', '--db', db]);
    const m = /^1\. Tree: (?<tree>\S+), branch demo at (?<commit>[0-9a-f]{40})/m.exec(first.stdout);
    tree = join(dir, m?.groups?.tree ?? 'missing');
    commit = m?.groups?.commit ?? 'missing';
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs ingest, check and report on the bundled example and exits 0', () => {
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/2\. Ingest: 9 messages .* \(9 new, 0 already stored\)/);
    expect(first.stdout).toMatch(/\[applied\] series 1, v1: on [0-9a-f]{12} \(base-commit\); 3 findings:/);
    expect(first.stdout).toMatch(/\[applied\] series 2, v2: on [0-9a-f]{12} \(base-commit\); 2 findings:/);
    expect(first.stdout).toContain('7 new replies printed above');
  });

  it('the base-commit in the example mbox is the commit the demo tree is built at', () => {
    const bases = [...readFileSync(MBOX, 'utf8').matchAll(/^base-commit: (?<id>\S+)$/gm)].map((m) => m.groups!.id);
    expect(bases).toHaveLength(2);
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    for (const b of bases) expect(b, 'examples/tree changed: put the new commit id in the mbox base-commit: lines').toBe(commit);
    expect(first.stdout).not.toContain('note: the mbox names base-commit');
  });

  it('names each finding at the file:line that holds it, and the replies quote that line', () => {
    const s = new Database(db, { readonly: true });
    const heads = s.prepare('SELECT s.version, c.head_commit FROM checks c JOIN series s ON s.id = c.series_id ORDER BY c.id').all() as
      { version: number; head_commit: string }[];
    s.close();
    const v1 = heads.find((h) => h.version === 1)!.head_commit;
    const v2 = heads.find((h) => h.version === 2)!.head_commit;
    const expected: [string, string, number, string, string][] = [
      [v1, 'include/uapi/linux/vfio_sample.h', 38, 'uapi-argsz-flags', 'struct vfio_sample_reset {'],
      [v1, 'drivers/vfio/sample/sample_core.c', 38, 'bug-on', 'BUG_ON(!sdev->regs);'],
      [v1, 'drivers/vfio/sample/sample_core.c', 60, 'lock-imbalance', 'return -EBUSY;'],
      [v2, 'drivers/vfio/sample/sample_core.c', 61, 'lock-imbalance', 'return -EBUSY;'],
    ];
    for (const [head, file, line, rule, text] of expected) {
      expect(first.stdout).toContain(`${file}:${line}: ${rule} `);
      expect(show(tree, head, file)[line - 1]).toContain(text);
    }
    // The reply to each patch quotes the added line and puts the rule right under it.
    const replies = first.stdout.split(/^={72}$/m).slice(1);
    const to = (subject: string): string => replies.find((r) => r.includes(`Subject: Re: ${subject}`)) ?? '';
    expect(to('[PATCH v1 2/3]')).toMatch(/> \+\tBUG_ON\(!sdev->regs\);\n\n\[warning\] bug-on, confidence high, concern [0-9a-f]{12}\n/);
    expect(to('[PATCH v1 3/3]')).toMatch(/> \+\t\treturn -EBUSY;\n\n\[warning\] lock-imbalance, confidence moderate/);
    expect(to('[PATCH v1 3/3]').replace(/\s+/g, ' ')).toContain('is still held when enable_store() returns at line 60');
    expect(to('[PATCH v1 1/3]')).toMatch(/> \+struct vfio_sample_reset \{\n\n\[error\] uapi-argsz-flags/);
    expect(to('[PATCH v1 0/3]')).toContain('Findings: 3 in 3 of 3 patches');
    expect(to('[PATCH v2 2/3]')).toBe(''); // nothing left to say on the fixed patch
  });

  it('v2 resolves the BUG_ON concern and keeps the other two open', () => {
    const followUp = first.stdout.split(/^={72}$/m).find((r) => r.includes('Subject: Re: [PATCH v2 0/3]')) ?? '';
    expect(followUp).toMatch(/Resolved in v2:\n- [0-9a-f]{12} bug-on in drivers\/vfio\/sample\/sample_core\.c,\s+sample_hw_reset\(\)/);
    expect(first.stdout).toMatch(/[0-9a-f]{12}\s+bug-on\s+drivers\/vfio\/sample\/sample_core\.c sample_hw_reset\(\)\s+new\s+resolved\n/);
    expect(first.stdout).toMatch(/[0-9a-f]{12}\s+lock-imbalance\s+drivers\/vfio\/sample\/sample_core\.c enable_store\(\)\s+new\s+open\n/);
    expect(first.stdout).toContain('now: 2 open, 1 resolved, 0 dismissed');
    const s = new Database(db, { readonly: true });
    const states = Object.fromEntries((s.prepare('SELECT rule, state FROM concerns').all() as { rule: string; state: string }[]).map((r) => [r.rule, r.state]));
    s.close();
    expect(states).toEqual({ 'uapi-argsz-flags': 'open', 'bug-on': 'resolved', 'lock-imbalance': 'open' });
  });

  it('a second run sends nothing new and says what was already sent', () => {
    const again = demo(dir, ['--no-serve', '--db', db]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain('1. Tree: ./vfio-review-demo/sample-tree, branch demo at ' + commit + ' (already there)');
    expect(again.stdout).toContain('(0 new, 9 already stored)');
    expect(again.stdout).not.toContain('X-vfio-review:');
    expect(again.stdout).toContain('   0 new replies\n');
    expect(again.stdout.match(/^ {3}already sent: Re: \[PATCH v[12] [0-3]\/3\]/gm)).toHaveLength(7);
    const s = new Database(db, { readonly: true });
    expect(s.prepare("SELECT count(*) FROM outbox WHERE state = 'sent'").pluck().get()).toBe(7);
    s.close();
  });

  it('serves the dashboard on 127.0.0.1 until SIGINT, then exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'demo', '--db', db, '--port', '0'], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      const url = await new Promise<string>((done, fail) => {
        child.stdout.on('data', (b: Buffer) => {
          stdout += b.toString();
          const m = /^6\. Dashboard: (?<url>http:\/\/127\.0\.0\.1:\d+\/concerns)/m.exec(stdout);
          if (m) done(m.groups!.url!);
        });
        child.on('exit', () => fail(new Error(`demo exited before serving:\n${stdout}\n${stderr}`)));
      });
      const page = await fetch(url);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('lock-imbalance');
      expect(html).toContain('uapi-argsz-flags');
      const api = (await (await fetch(url.replace('/concerns', '/api/concerns'))).json()) as { concerns: { rule: string; state: string }[] };
      expect(api.concerns.map((c) => c.rule).sort()).toEqual(['lock-imbalance', 'uapi-argsz-flags']);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited, stderr).toBe(0);
  });
});
