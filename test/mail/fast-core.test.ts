import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readMbox } from '../../src/ingest/mbox-source.js';
import { fastCore } from '../../src/mail/fast-core.js';
import { mailparserCore, type MailCore } from '../../src/mail/parse.js';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
/** The header fields anything downstream reads through headerValues(). */
const HEADER_KEYS = ['message-id', 'in-reply-to', 'references', 'list-id', 'x-no-review'];

/** Every MailCore field as plain data, headerValues() sampled at the keys that matter. */
function comparable(core: MailCore): Record<string, unknown> {
  const { headerValues, ...fields } = core;
  return { ...fields, headerValues: Object.fromEntries(HEADER_KEYS.map((k) => [k, headerValues(k)])) };
}

/** Asserts the fast path is taken and agrees with mailparser; returns the fast result for spot checks. */
async function agrees(bytes: Buffer): Promise<MailCore> {
  const fast = fastCore(bytes);
  expect(fast).not.toBeNull();
  expect(comparable(fast!)).toStrictEqual(comparable(await mailparserCore(bytes)));
  return fast!;
}

const mail = (lines: string[], eol = '\r\n'): Buffer => Buffer.from(lines.join(eol), 'utf8');
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const head = [
  'From: Alex Example <Alex.Example@Example.COM>',
  'To: kvm@vger.kernel.org, Someone Else <else@example.org>',
  'Date: Tue, 20 Oct 2020 15:58:09 +0200',
  'Message-ID: <20201020135809.1234-1-alex@example.com>',
];

describe('fastCore on hand-written messages', () => {
  it('decodes an RFC 2047 utf-8 Q subject', async () => {
    const m = await agrees(mail([...head, 'Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=', '', 'body', '']));
    expect(m.subject).toBe('Grüße aus München');
  });

  it('decodes and joins folded RFC 2047 utf-8 B words', async () => {
    const subject = `Subject: =?UTF-8?B?${b64('[PATCH] vfio: ')}?=\r\n =?UTF-8?B?${b64('naïve ✓')}?=`;
    const m = await agrees(mail([...head, subject, '', 'body', '']));
    expect(m.subject).toBe('[PATCH] vfio: naïve ✓');
  });

  it('decodes an iso-8859-1 quoted-printable body', async () => {
    const m = await agrees(mail([...head, 'Subject: qp', 'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable', '', 'Gr=FC=DFe, soft=', ' break =3D done', '']));
    expect(m.text).toBe('Grüße, soft break = done\n');
  });

  it('decodes a base64 utf-8 body', async () => {
    const body = b64('Reviewed-by: Jörg Rödel <joro@8bytes.org>\n');
    const m = await agrees(mail([...head, 'Subject: b64', 'Content-Type: text/plain; charset="UTF-8"',
      'Content-Transfer-Encoding: base64', '', body.slice(0, 20), body.slice(20), '']));
    expect(m.text).toBe('Reviewed-by: Jörg Rödel <joro@8bytes.org>\n');
  });

  it('reads raw 8-bit utf-8 headers as UTF-8', async () => {
    const m = await agrees(mail(['From: Jörg Rödel <JOro@8bytes.org>', 'Subject: Grüße', 'Message-ID: <a@b>', '', 'x']));
    expect([m.subject, m.from]).toStrictEqual(['Grüße', { name: 'Jörg Rödel', addr: 'joro@8bytes.org' }]);
  });

  it('takes every id of a folded References header', async () => {
    const m = await agrees(mail([...head, 'Subject: refs', 'In-Reply-To: <p2@x>',
      'References: <c0@x>\r\n\t<p1@x>\r\n <p2@x>', '', 'reply', '']));
    expect([m.references, m.inReplyTo]).toStrictEqual([['c0@x', 'p1@x', 'p2@x'], 'p2@x']);
    expect(m.headerValues('references')).toStrictEqual(['<c0@x>\r\n\t<p1@x>\r\n <p2@x>']);
  });

  it('gives a null date when there is no Date header', async () => {
    const m = await agrees(mail(['From: a@b.c', 'Subject: no date', 'Message-ID: <d@x>', '', 'x', '']));
    expect(m.date).toBeNull();
  });

  it('leaves an unparseable Date to mailparser, which substitutes the current time', () => {
    expect(fastCore(mail(['From: a@b.c', 'Date: sometime last week', 'Subject: s', '', 'x', '']))).toBeNull();
  });

  it('gives a null messageId when there is no Message-ID', async () => {
    const m = await agrees(mail(['From: a@b.c', 'Subject: anonymous', '', 'x', '']));
    expect(m.messageId).toBeNull();
  });

  it('takes Reply-To, and a bare Message-ID gets its brackets', async () => {
    const m = await agrees(mail(['From: "Name via iommu" <iommu@lists.example.org>', 'Reply-To: Real Name <Real@Example.org>',
      'Message-ID: bare@id', 'Subject: s', '', 'x', '']));
    expect([m.replyTo, m.messageId]).toStrictEqual([{ name: 'Real Name', addr: 'real@example.org' }, 'bare@id']);
  });

  it('returns null for multipart, attachments and unusual charsets', () => {
    const multipart = ['Content-Type: multipart/mixed; boundary="b"', '', '--b', '', 'x', '--b--', ''];
    expect(fastCore(mail([...head, ...multipart]))).toBeNull();
    expect(fastCore(mail([...head, 'Content-Disposition: attachment; filename=x.patch', '', 'x']))).toBeNull();
    expect(fastCore(mail([...head, 'Content-Type: text/plain; charset=iso-2022-jp', '', 'x']))).toBeNull();
    expect(fastCore(mail([...head, 'Content-Type: text/html', '', '<p>x</p>']))).toBeNull();
  });

  it('decodes format=flowed like mailparser, with and without DelSp', async () => {
    const flowed = (params: string) =>
      mail([...head, `Content-Type: text/plain; charset=utf-8; ${params}`, '', 'A soft ', 'wrapped line.', '> quoted ', '> too', '']);
    // mailsplit's decodeFlowed ignores quote depth (RFC 3676 4.5) and drops the final line break.
    expect((await agrees(flowed('format=flowed'))).text).toBe('A soft wrapped line.\n> quoted > too');
    expect((await agrees(flowed('format=flowed; delsp=yes'))).text).toBe('A softwrapped line.\n> quoted> too');
  });

  it('turns CRLF into LF and keeps LF messages as they are', async () => {
    const lines = [...head, 'Subject: eol', '', 'one', '', 'two', ''];
    expect((await agrees(mail(lines, '\r\n'))).text).toBe('one\n\ntwo\n');
    expect((await agrees(mail(lines, '\n'))).text).toBe('one\n\ntwo\n');
  });

  it('gives empty text for a header block with nothing after it', async () => {
    const m = await agrees(mail([...head, 'Subject: empty', '', '']));
    expect(m.text).toBe('');
  });

  it('reads a message with no blank line as all header', async () => {
    const m = await agrees(mail([...head, 'Subject: headers only', 'X-No-Review: yes']));
    expect([m.text, m.subject, m.headerValues('x-no-review')]).toStrictEqual(['', 'headers only', ['yes']]);
  });

  it('keeps raw header keys and values as mailsplit splits them', async () => {
    const m = await agrees(mail(['From MAILER-DAEMON Thu Jan  1 00:00:00 1970', ...head, 'List-Id: <kvm.vger.kernel.org>',
      'X-Weird : v', 'no colon here', 'Subject: s', '', 'x']));
    expect([...m.headerNames]).toStrictEqual(['from', 'to', 'date', 'message-id', 'list-id', 'x-weird', '', 'subject']);
    expect(m.listIds).toStrictEqual(['kvm.vger.kernel.org']);
  });
});

interface Coverage {
  total: number;
  fast: number;
  mismatches: string[];
}

/** Compares every message the fast path takes with mailparser, field by field. */
async function differential(paths: string[], limit = Infinity): Promise<Coverage> {
  const out: Coverage = { total: 0, fast: 0, mismatches: [] };
  for (const path of paths) {
    for await (const { bytes, locator } of readMbox(path)) {
      if (out.total >= limit) return out;
      out.total++;
      const got = fastCore(bytes);
      if (!got) continue;
      out.fast++;
      const have = comparable(got);
      const want = comparable(await mailparserCore(bytes));
      for (const [key, value] of Object.entries(want)) {
        if (!isDeepStrictEqual(have[key], value)) out.mismatches.push(`${path} ${locator} ${key}`);
      }
    }
  }
  return out;
}

function report(name: string, c: Coverage): void {
  console.info(`fastCore ${name}: ${c.fast}/${c.total} messages on the fast path (${((100 * c.fast) / c.total).toFixed(1)}%)`);
  expect(c.mismatches).toStrictEqual([]);
  expect(c.total).toBeGreaterThan(0);
  // Kernel mail is overwhelmingly single-part text/plain; a drop means a case stopped being handled.
  expect(c.fast / c.total).toBeGreaterThan(0.9);
}

describe.skipIf(!existsSync(CORPUS))('fastCore agrees with mailparser on the real corpus (skipped: ../shared/corpus absent)', () => {
  for (const file of ['patches-applying-6.1.192.mbox.gz', 'patches-in-6.1.192.mbox.gz']) {
    it(file, async () => report(file, await differential([join(CORPUS, file)])), 60_000);
  }

  it('threads/*.mbox', async () => {
    const dir = join(CORPUS, 'threads');
    const files = readdirSync(dir).filter((f) => f.endsWith('.mbox')).sort();
    report('threads', await differential(files.map((f) => join(dir, f))));
  }, 60_000);

  it('the first 5,000 messages of vfio-iommu-threads.mbox.gz', async () => {
    report('vfio-iommu-threads', await differential([join(CORPUS, 'vfio-iommu-threads.mbox.gz')], 5000));
  }, 120_000);
});
