import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VrError } from '../../src/errors.js';
import { readMaildir } from '../../src/ingest/maildir-source.js';

// Built per run rather than committed: git does not keep the empty tmp/ a Maildir needs.
let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vr-maildir-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function maildir(name: string, files: Record<string, string>, subs = ['cur', 'new', 'tmp']): string {
  const dir = join(tmp, name);
  for (const sub of subs) mkdirSync(join(dir, sub), { recursive: true });
  for (const [rel, text] of Object.entries(files)) writeFileSync(join(dir, rel), text, 'latin1');
  return dir;
}

async function collect(dir: string): Promise<{ locator: string; text: string }[]> {
  const out: { locator: string; text: string }[] = [];
  for await (const m of readMaildir(dir)) out.push({ locator: m.locator, text: m.bytes.toString('latin1') });
  return out;
}

async function failure(dir: string): Promise<VrError> {
  const err: unknown = await collect(dir).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(VrError);
  return err as VrError;
}

describe('readMaildir', () => {
  it('reads cur/ and new/ in file-name order across both, ignoring tmp/, dot files and directories', async () => {
    const dir = maildir('full', {
      'cur/1700000002.M2P1.host:2,S': 'Subject: second\r\n\r\nseen\r\n',
      'new/1700000003.M3P1.host': 'Subject: third\n\nunseen\n',
      'cur/1700000001.M1P1.host:2,RS': 'Subject: first\n\nseen and replied\n',
      'new/1700000000.M0P1.host': 'Subject: zeroth\n\nno trailing newline',
      'tmp/1700000004.M4P1.host': 'Subject: still being delivered\n\n',
      'cur/.hidden': 'not a message\n',
    });
    mkdirSync(join(dir, 'new', 'not-a-message'));
    expect(await collect(dir)).toEqual([
      { locator: 'new/1700000000.M0P1.host', text: 'Subject: zeroth\n\nno trailing newline' },
      { locator: 'cur/1700000001.M1P1.host:2,RS', text: 'Subject: first\n\nseen and replied\n' },
      { locator: 'cur/1700000002.M2P1.host:2,S', text: 'Subject: second\r\n\r\nseen\r\n' },
      { locator: 'new/1700000003.M3P1.host', text: 'Subject: third\n\nunseen\n' },
    ]);
  });

  it('orders by code unit, not locale (upper case before lower case)', async () => {
    const dir = maildir('order', { 'new/b': 'b\n', 'cur/B': 'B\n', 'cur/a': 'a\n' });
    expect((await collect(dir)).map((m) => m.locator)).toEqual(['cur/B', 'cur/a', 'new/b']);
  });

  it('yields nothing for an empty Maildir', async () => {
    expect(await collect(maildir('empty', {}))).toEqual([]);
  });

  it('treats a missing new/ as empty', async () => {
    const dir = maildir('cur-only', { 'cur/1': 'Subject: only\n\n' }, ['cur']);
    expect(await collect(dir)).toEqual([{ locator: 'cur/1', text: 'Subject: only\n\n' }]);
  });

  it('rejects a missing directory with MAILDIR_READ naming it', async () => {
    const dir = join(tmp, 'does-not-exist');
    const err = await failure(dir);
    expect(err.code).toBe('MAILDIR_READ');
    expect(err.message).toContain(dir);
  });

  it('rejects a directory with neither cur/ nor new/', async () => {
    const dir = maildir('not-a-maildir', {}, ['tmp']);
    const err = await failure(dir);
    expect(err.code).toBe('MAILDIR_READ');
    expect(err.message).toContain(dir);
  });

  it('rejects a plain file given as the Maildir', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const err = await failure(file);
    expect(err.code).toBe('MAILDIR_READ');
    expect(err.message).toContain(file);
  });
});
