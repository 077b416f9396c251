import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VrError } from '../../src/errors.js';
import { MboxSplitter, readMbox } from '../../src/ingest/mbox-source.js';
import type { MboxFormat, RawMail } from '../../src/ingest/mbox-source.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/mbox/', import.meta.url));
const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const CHUNK = 64 * 1024; // the reader's chunk size for plain files; boundary tests aim at it

interface Expected {
  format: MboxFormat;
  messages: { locator: string; text: string }[];
}

async function collect(path: string, format?: MboxFormat): Promise<RawMail[]> {
  const out: RawMail[] = [];
  for await (const m of readMbox(path, format ? { format } : {})) out.push(m);
  return out;
}

async function count(path: string): Promise<number> {
  let n = 0;
  for await (const _ of readMbox(path)) n++;
  return n;
}

/** Latin-1 keeps one char per byte, so a text comparison is a byte comparison. */
const asText = (ms: RawMail[]): { locator: string; text: string }[] =>
  ms.map((m) => ({ locator: m.locator, text: m.bytes.toString('latin1') }));

function expected(name: string): Expected {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), 'utf8')) as Expected;
}

function split(input: Buffer, cuts: number[], format: MboxFormat = 'mboxrd'): RawMail[] {
  const s = new MboxSplitter(format);
  const out: RawMail[] = [];
  let from = 0;
  for (const at of [...cuts, input.length]) {
    out.push(...s.push(input.subarray(from, at)));
    from = at;
  }
  return [...out, ...s.end()];
}

let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vr-mbox-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('readMbox on hand-written fixtures', () => {
  const names = readdirSync(FIXTURES)
    .filter((f) => f.startsWith('mbox-') && f.endsWith('.mbox'))
    .map((f) => f.slice(0, -'.mbox'.length))
    .sort();

  it('has a fixture per case', () => {
    expect(names).toEqual(['mbox-body-from', 'mbox-no-leading-from', 'mbox-o-escaping', 'mbox-rd-escaping']);
  });

  for (const name of names) {
    it(name, async () => {
      const want = expected(name);
      expect(asText(await collect(join(FIXTURES, `${name}.mbox`), want.format))).toEqual(want.messages);
    });
  }

  it('mboxrd and mboxo differ only on >>From lines', async () => {
    const [rd] = await collect(join(FIXTURES, 'mbox-rd-escaping.mbox'), 'mboxrd');
    const [o] = await collect(join(FIXTURES, 'mbox-rd-escaping.mbox'), 'mboxo');
    expect(o!.bytes.toString('latin1')).toContain('\n>>From here on this was a ">From " line.\n');
    expect(o!.bytes.toString('latin1')).toContain('\n>>>From three deep.\n');
    expect(rd!.bytes.toString('latin1')).toContain('\n>From here on this was a ">From " line.\n');
  });
});

describe('readMbox framing', () => {
  it('yields nothing for an empty file', async () => {
    const path = join(tmp, 'empty.mbox');
    writeFileSync(path, '');
    expect(await collect(path)).toEqual([]);
  });

  it('preserves CRLF and removes only the CRLF blank line before the next From_ line', async () => {
    const path = join(tmp, 'crlf.mbox');
    const text =
      'From MAILER-DAEMON Mon Jan  1 00:00:00 2024\r\nSubject: a\r\n\r\nbody\r\n>From escaped\r\n\r\n\r\n' +
      'From MAILER-DAEMON Mon Jan  1 00:00:01 2024\r\nSubject: b\r\n\r\nlast\r\n\r\n';
    writeFileSync(path, text, 'latin1');
    expect(asText(await collect(path))).toEqual([
      { locator: 'offset:0', text: 'Subject: a\r\n\r\nbody\r\nFrom escaped\r\n\r\n' },
      { locator: `offset:${text.indexOf('From MAILER-DAEMON Mon Jan  1 00:00:01')}`, text: 'Subject: b\r\n\r\nlast\r\n' },
    ]);
  });

  it('adds no newline to a last message that lacks one', async () => {
    const path = join(tmp, 'no-eol.mbox');
    writeFileSync(path, 'From x Mon Jan  1 00:00:00 2024\nSubject: a\n\nno newline at the end');
    expect(asText(await collect(path))).toEqual([
      { locator: 'offset:0', text: 'Subject: a\n\nno newline at the end' },
    ]);
  });

  it('yields an empty message for a From_ line with nothing after it, so counts match From_ lines', async () => {
    const path = join(tmp, 'empty-msg.mbox');
    writeFileSync(path, 'From a Mon Jan  1 00:00:00 2024\n\nFrom b Mon Jan  1 00:00:01 2024\nSubject: b\n');
    expect(asText(await collect(path))).toEqual([
      { locator: 'offset:0', text: '' },
      { locator: 'offset:33', text: 'Subject: b\n' },
    ]);
  });

  it('separates at a From_ line split across a 64 KiB read boundary (LF and CRLF)', async () => {
    for (const eol of ['\n', '\r\n']) {
      // Put the blank line so that the boundary falls at every byte of "<eol><eol>From ".
      for (let shift = -eol.length; shift <= 2 * eol.length + 5; shift++) {
        const head = `From a Mon Jan  1 00:00:00 2024${eol}Subject: a${eol}${eol}`;
        const blankAt = CHUNK - shift;
        let body = '';
        while (head.length + body.length + 64 + eol.length < blankAt) body += 'x'.repeat(63) + eol;
        body += 'y'.repeat(blankAt - head.length - body.length - eol.length) + eol;
        const tail = `Subject: b${eol}${eol}>From b${eol}`;
        const text = `${head}${body}${eol}From b Mon Jan  1 00:00:01 2024${eol}${tail}`;
        expect(text.indexOf(`${eol}${eol}From b`) + eol.length).toBe(blankAt);
        const path = join(tmp, 'boundary.mbox');
        writeFileSync(path, text, 'latin1');
        const got = asText(await collect(path));
        expect(got, `eol=${JSON.stringify(eol)} shift=${shift}`).toEqual([
          { locator: 'offset:0', text: `Subject: a${eol}${eol}${body}` },
          { locator: `offset:${blankAt + eol.length}`, text: tail.replace('>From', 'From') },
        ]);
      }
    }
  });

  it('keeps a 10 MB line, and unescapes a 10 MB >From line, byte for byte', async () => {
    const big = 10 * 1024 * 1024;
    const path = join(tmp, 'long-lines.mbox');
    const y = Buffer.alloc(big, 'y');
    const z = Buffer.alloc(big, 'z');
    const b = (s: string): Buffer => Buffer.from(s, 'latin1');
    const file = Buffer.concat([
      b('From a Mon Jan  1 00:00:00 2024\nSubject: big\n\n'),
      y,
      b('\n>From '),
      z,
      b('\n\nFrom b Mon Jan  1 00:00:01 2024\nSubject: small\n\nx\n'),
    ]);
    writeFileSync(path, file);
    const got = await collect(path);
    expect(got).toHaveLength(2);
    const want = Buffer.concat([b('Subject: big\n\n'), y, b('\nFrom '), z, b('\n')]);
    expect(got[0]!.bytes.equals(want)).toBe(true);
    expect(got[1]).toEqual({ bytes: b('Subject: small\n\nx\n'), locator: `offset:${file.lastIndexOf('From b')}` });
  });
});

describe('MboxSplitter across arbitrary chunk splits', () => {
  const tricky = Buffer.from(
    'From MAILER-DAEMON x\n' +
      'Subject: a\n\n' +
      '>From one\n>>From two\n> From no\n>\n>>\nFrom inside a paragraph\n\n\n' +
      'From MAILER-DAEMON y\r\n' +
      'Subject: b\r\n\r\nbody\r\n>From crlf\r\n\r\n' +
      'From MAILER-DAEMON z\n' +
      '\n' +
      'From MAILER-DAEMON w\n' +
      'last line without a newline\r',
    'latin1',
  );
  const at = (s: string): string => `offset:${tricky.indexOf(s)}`;
  const want = [
    {
      locator: 'offset:0',
      text: 'Subject: a\n\nFrom one\n>From two\n> From no\n>\n>>\nFrom inside a paragraph\n\n',
    },
    { locator: at('From MAILER-DAEMON y'), text: 'Subject: b\r\n\r\nbody\r\nFrom crlf\r\n' },
    { locator: at('From MAILER-DAEMON z'), text: '' },
    { locator: at('From MAILER-DAEMON w'), text: 'last line without a newline\r' },
  ];

  it('splits the input in one piece', () => {
    expect(asText(split(tricky, []))).toEqual(want);
  });

  it('gives the same result for every two- and three-piece split', () => {
    for (let i = 0; i <= tricky.length; i++) {
      expect(asText(split(tricky, [i])), `cut at ${i}`).toEqual(want);
      for (let j = i; j <= tricky.length; j++) {
        expect(asText(split(tricky, [i, j])), `cuts at ${i},${j}`).toEqual(want);
      }
    }
  });

  it('gives the same result fed one byte at a time, in both formats', () => {
    const everyByte = Array.from({ length: tricky.length }, (_, i) => i);
    expect(asText(split(tricky, everyByte))).toEqual(want);
    expect(asText(split(tricky, everyByte, 'mboxo'))).toEqual(asText(split(tricky, [], 'mboxo')));
    expect(asText(split(tricky, [], 'mboxo'))[0]!.text).toContain('\n>>From two\n');
  });
});

describe('readMbox gzip and errors', () => {
  const rd = join(FIXTURES, 'mbox-rd-escaping.mbox');

  it('detects gzip by magic bytes, not by name', async () => {
    const want = expected('mbox-rd-escaping').messages;
    const gzNoSuffix = join(tmp, 'gzipped-without-suffix.mbox');
    writeFileSync(gzNoSuffix, gzipSync(readFileSync(rd)));
    expect(asText(await collect(gzNoSuffix))).toEqual(want);
    const plainWithSuffix = join(tmp, 'plain-with-suffix.mbox.gz');
    copyFileSync(rd, plainWithSuffix);
    expect(asText(await collect(plainWithSuffix))).toEqual(want);
  });

  it('reads a multi-member gzip cut in the middle of a From_ line', async () => {
    const raw = readFileSync(rd);
    const cut = raw.indexOf('From MAILER-DAEMON Mon Jan  1 00:00:01') + 3;
    const path = join(tmp, 'multi-member.mbox.gz');
    writeFileSync(path, Buffer.concat([gzipSync(raw.subarray(0, cut)), gzipSync(raw.subarray(cut))]));
    expect(asText(await collect(path))).toEqual(expected('mbox-rd-escaping').messages);
  });

  it('yields nothing for a gzipped empty file', async () => {
    const path = join(tmp, 'empty.mbox.gz');
    writeFileSync(path, gzipSync(Buffer.alloc(0)));
    expect(await collect(path)).toEqual([]);
  });

  it.each([
    ['a missing file', (): string => join(tmp, 'does-not-exist.mbox')],
    [
      'a directory',
      (): string => {
        const p = join(tmp, 'a-dir.mbox');
        mkdirSync(p, { recursive: true });
        return p;
      },
    ],
    [
      'a corrupt gzip',
      (): string => {
        const p = join(tmp, 'corrupt.mbox.gz');
        writeFileSync(p, Buffer.concat([gzipSync(Buffer.alloc(1000, 'a')).subarray(0, 20), Buffer.alloc(100, 0xff)]));
        return p;
      },
    ],
  ])('rejects %s with MBOX_READ naming the path', async (_what, make) => {
    const path = make();
    const err: unknown = await collect(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VrError);
    expect((err as VrError).code).toBe('MBOX_READ');
    expect((err as VrError).message).toContain(path);
  });
});

describe.skipIf(!existsSync(CORPUS))('readMbox on the real corpus (skipped when ../shared/corpus is absent)', () => {
  it('counts the patch files', async () => {
    expect(await count(join(CORPUS, 'patches-applying-6.1.192.mbox.gz'))).toBe(451);
    expect(await count(join(CORPUS, 'patches-in-6.1.192.mbox.gz'))).toBe(566);
  });

  it('counts the labelled threads', async () => {
    const files = readdirSync(join(CORPUS, 'threads')).filter((f) => f.endsWith('.mbox'));
    let total = 0;
    for (const f of files) total += await count(join(CORPUS, 'threads', f));
    expect(total).toBe(270);
  });

  it('yields messages that start with a header line', async () => {
    for await (const m of readMbox(join(CORPUS, 'patches-applying-6.1.192.mbox.gz'))) {
      // One line at most 998 octets (RFC 5322), decoded 1:1 so the regex sees bytes.
      expect(m.bytes.toString('latin1', 0, 998), m.locator).toMatch(/^[\x21-\x39\x3b-\x7e]+:/);
    }
  });
});
