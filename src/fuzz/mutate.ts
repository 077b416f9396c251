/**
 * Mutation operators for the malformed-mail campaign (issue 8). Each operator is named, belongs to a
 * family, and turns one seed message into hostile input: one message, a batch of messages that only
 * misbehave together (colliding identities, reference loops), or a whole mbox stream for the splitter.
 *
 * Messages are handled as 'latin1' strings: one char per byte, so every byte sequence (NUL, invalid
 * UTF-8, a lone CR) survives the round trip to a Buffer unchanged.
 */
import { createHash } from 'node:crypto';
import type { MboxFormat } from '../ingest/mbox-source.js';
import { caseRng, type Rng } from './rng.js';
import { fromLines, looseMbox, writeMbox, FROM_LINES } from './mbox.js';
import {
  asPart, attachment, b64, BAD_UTF8, BAD_WORDS, bodyOf, DIFF, fill, header, join, MB, multipart, nested, noise, nonce, setBody,
  setHeader, split, sprinkle, withContent, withDiff, type Part,
} from './mail-edit.js';

export type Family =
  | 'truncate' | 'mime' | 'charset' | 'nul' | 'long-line' | 'msgid' | 'references' | 'base64'
  | 'attachment' | 'mbox' | 'shape' | 'subject' | 'diff' | 'date';
/** message: one in, one out (combinable); batch: several messages; mbox: one mbox stream. */
export type Shape = 'message' | 'batch' | 'mbox';

export interface Ctx {
  /** Another seed message (latin1), for splices, batches and mbox streams. */
  other(): string;
  /** How the reader will take an mbox case (chosen before the operator runs, so a writer can match it). */
  format: MboxFormat;
}
/** An mbox written properly, with the messages a reader must give back. */
export interface WrittenMbox { mbox: string; expected: string[] }
type Apply = (m: string, r: Rng, c: Ctx) => string | string[] | WrittenMbox;

const op = <const Id extends string>(id: Id, family: Family, shape: Shape, weight: number, apply: Apply, heavy = false) =>
  ({ id, family, shape, weight, apply, heavy });
// Heavy operators (10-20 MB inputs, or seconds of parsing) are rare, about 1 case in 1,500
// overall, and never combined.
const HEAVY = 0.05;

export const OPERATORS = [
  op('truncate-mid-header', 'truncate', 'message', 10, (m, r) => m.slice(0, r.int(split(m).head.length + 1))),
  op('truncate-mid-line', 'truncate', 'message', 10, (m, r) => {
    const { head } = split(m);
    const starts = [0, ...[...head.matchAll(/\n/g)].map((x) => x.index + 1)];
    const a = r.pick(starts);
    const e = head.indexOf('\n', a);
    return m.slice(0, a + 1 + r.int(Math.max(1, (e < 0 ? head.length : e) - a - 1)));
  }),
  op('truncate-mid-fold', 'truncate', 'message', 10, (m, r) => {
    const words = (header(m, 'subject') ?? '[PATCH] vfio: a subject long enough to fold').split(' ');
    const out = setHeader(m, 'Subject', [`${words.slice(0, 2).join(' ')}\n\t${words.slice(2).join(' ') || 'x'}\n continued`]);
    const at = out.indexOf('\n\t', Math.max(0, out.search(/^subject:/im)));
    return out.slice(0, at + 1 + r.int(16));
  }),
  op('mime-missing-close', 'mime', 'message', 10, (m, r) =>
    nested(m, multipart('mixed', `fz-${nonce(r)}`, [{ type: 'text/plain; charset=utf-8', body: bodyOf(m) }, attachment(withDiff(''))], false))),
  op('mime-boundary-mismatch', 'mime', 'message', 10, (m, r) => {
    const b = `fz-${nonce(r)}`;
    const p = multipart('mixed', b, [{ type: 'text/plain', body: bodyOf(m) }, attachment(withDiff(''))], r.chance(0.5));
    const declared = r.pick([`"${b}x"`, `"${b.slice(0, 3)}"`, '""', `"${b}"; boundary="${b}2"`, '', `"${b} "`]);
    return withContent(m, declared ? `multipart/mixed; boundary=${declared}` : 'multipart/mixed', null, p.body + `--${b}x--\n`);
  }),
  op('mime-nested-50', 'mime', 'message', 10, (m, r) => {
    let p: Part = { type: 'text/plain; charset=utf-8', body: bodyOf(m) };
    const close = r.chance(0.7);
    for (let i = 0; i < 50; i++) p = multipart(r.pick(['mixed', 'alternative', 'related']), `nest${i}`, [p], close);
    return nested(m, p);
  }),
  op('mime-nested-random', 'mime', 'message', 10, (m, r) => {
    let p = asPart(m);
    for (let i = 2 + r.int(10); i > 0; i--) {
      p = r.chance(0.3)
        ? { type: 'message/rfc822', body: `Content-Type: ${p.type}\nSubject: inner ${i}\n\n${p.body}` }
        : multipart(r.pick(['mixed', 'digest', 'alternative', 'signed']), `r${i}-${nonce(r)}`, r.chance(0.5) ? [p, attachment(DIFF)] : [p], r.chance(0.8));
    }
    return nested(m, p);
  }),
  // A part type that announces more to come (an attached message, a multipart) and then no body at all.
  op('mime-headonly-typed', 'mime', 'message', 10, (m, r) => {
    const type = r.pick(['message/rfc822', 'message/rfc822; name="fwd.eml"', 'message/global', 'text/rfc822-headers', 'multipart/mixed; boundary=x']);
    const disposition = r.pick(['inline', 'inline; filename="fwd.eml"', 'attachment', null]);
    const out = setHeader(setHeader(m, 'Content-Type', [type]), 'Content-Disposition', disposition ? [disposition] : []);
    return split(out).head + r.pick(['', '\n']);
  }),
  op('charset-unknown', 'charset', 'message', 10, (m, r) => withContent(m,
    `text/plain; charset=${r.pick(['unknown-xyz', '"unknown-xyz"', 'x-user-defined', 'utf-16', 'utf-32le', 'utf-8"', '""', 'iso-8859-99', 'ks_c_5601-1987'])}`,
    r.pick([null, '8bit', 'quoted-printable', 'x-uuencode', 'unknown-enc']), sprinkle(bodyOf(m), r, BAD_UTF8, r.int(8)))),
  op('charset-utf7', 'charset', 'message', 10, (m, r) => withContent(m, 'text/plain; charset=utf-7', null,
    sprinkle(bodyOf(m), r, ['+AGEAYgBj-', '+!!!-', '+ZZZZZZZZ', '+', '+-', '+2D3dAA-', '+AAA', '+/v8-'], 1 + r.int(20)))),
  op('charset-iso2022jp', 'charset', 'message', 10, (m, r) => setHeader(withContent(m,
    `text/plain; charset=${r.pick(['iso-2022-jp', 'iso-2022-jp-2', 'shift_jis', 'euc-jp'])}`, r.pick([null, '7bit', 'base64']),
    sprinkle(bodyOf(m), r, ['\x1b$B', '\x1b(B', '\x1b$(D', '\x1b(J', '\x1b', noise(r, 16), '\x8e\xff'], 1 + r.int(20))),
  'Subject', [`=?iso-2022-jp?B?${Buffer.from(`\x1b$B${noise(r, 12)}`, 'latin1').toString('base64')}?= [PATCH] x`])),
  op('invalid-utf8-header', 'charset', 'message', 10, (m, r) => {
    const name = r.pick(['Subject', 'From', 'To', 'Message-ID', 'References', 'List-Id']);
    return setHeader(m, name, [sprinkle(header(m, name) ?? 'x <a@b>', r, [...BAD_UTF8, ...BAD_WORDS], 1 + r.int(6))]);
  }),
  op('invalid-utf8-body', 'charset', 'message', 10, (m, r) => setBody(m, sprinkle(bodyOf(m), r, BAD_UTF8, 1 + r.int(30)))),
  op('charset-missing', 'charset', 'message', 10, (m, r) => {
    const body = sprinkle(bodyOf(m), r, ['\xe9', '\xc3\xa9', '\xff\xfe', '=E9', '\x80', '\x1b$B'], 1 + r.int(20));
    const cte = r.pick([null, '8bit', 'quoted-printable', 'base64']);
    const coded = cte === 'base64' ? b64(body) : body;
    if (r.chance(0.3)) return setBody(setHeader(setHeader(m, 'Content-Type', []), 'Content-Transfer-Encoding', cte ? [cte] : []), coded);
    return withContent(m, r.pick(['text/plain', 'text/plain;', 'text/plain; charset', 'text/plain; charset=', 'text/plain; format=flowed', 'text/x-patch', 'TEXT/PLAIN; CHARSET']), cte, coded);
  }),
  // A real charset that does not match the bytes: UTF-8 read as ASCII or GBK, Latin-1 read as UTF-8, UTF-16 as anything.
  op('charset-wrong', 'charset', 'message', 10, (m, r) => {
    const text = Buffer.from(bodyOf(m), 'latin1').toString('utf8');
    const bytes = r.pick(['utf8', 'latin1', 'utf16le'] as const);
    return withContent(m, `text/plain; charset=${r.pick(['us-ascii', 'utf-8', 'iso-8859-1', 'windows-1252', 'koi8-r', 'gbk', 'big5', 'shift_jis', 'euc-kr', 'utf-16', 'utf-16le', 'iso-8859-8-i'])}`,
      r.pick([null, '8bit', 'binary']), Buffer.from(text, bytes).toString('latin1'));
  }),
  op('nul-bytes', 'nul', 'message', 10, (m, r) => sprinkle(m, r, ['\0', '\0\0\0', ':\0', '\0\n'], 1 + r.int(20))),
  op('long-header-line', 'long-line', 'message', HEAVY, (m, r) =>
    setHeader(m, r.pick(['Subject', 'References', 'X-Long', 'From', 'Message-ID', 'Content-Type']),
      [fill(r.pick(['a', '<x@y> ', '[PATCH ', '=?utf-8?q?=41?= ', ' ', 'a,']), 10 * MB)]), true),
  op('long-body-line', 'long-line', 'message', HEAVY, (m, r) => {
    const body = bodyOf(m);
    const at = r.int(body.length + 1);
    return setBody(m, `${body.slice(0, at)}\n${fill(r.pick(['A', 'Reviewed-by: ', '> ', '+', ' ']), 10 * MB)}\n${body.slice(at)}`);
  }, true),
  // Long whitespace runs inside one line, where a line regex may backtrack: the in-body From: line
  // git am reads at the top of a patch, and a trailer-shaped line in its commit message. Lengths
  // are set so that a quadratic (or worse) regex passes the 10 s CPU bound on a 2-core machine;
  // half the heavy weight, as such a patch is read again by every later finish().
  op('ws-in-body-from', 'long-line', 'message', HEAVY / 2, (m, r) =>
    setBody(m, `From: ${r.pick([' ', '\t']).repeat(3000 + r.int(300))}x\n\n${withDiff(bodyOf(m))}`), true),
  op('ws-trailer', 'long-line', 'message', HEAVY / 2, (m, r) => setBody(m,
    `${r.pick(['Acked-by', 'Reviewed-by', 'Cc', 'X-Anything'])}: x${' '.repeat(160_000 + r.int(20_000))}y\n${withDiff(bodyOf(m))}`), true),
  // The same blank runs in a quoted-printable part, whose decoder (libqp) strips line-final blanks
  // with a regex that is quadratic in a run that does not end its line: 43 s for one message.
  op('qp-blank-run', 'long-line', 'message', 2, (m, r) => {
    const runs = Array.from({ length: 1 + r.int(3) }, () => `x${r.pick([' ', '\t', ' \t']).repeat(r.pick([2000, 30_000, 170_000]))}y`);
    const body = sprinkle(bodyOf(m), r, runs.map((x) => `\n${x}${r.pick(['', '\n', '=\n'])}`), runs.length);
    const type = r.chance(0.7) ? 'text/plain; charset=utf-8' : 'text/x-patch';
    return r.chance(0.7) ? withContent(m, type, 'quoted-printable', body)
      : nested(m, multipart('mixed', `qp-${nonce(r)}`, [{ type: 'text/plain\nContent-Transfer-Encoding: quoted-printable', body }], true));
  }),
  op('msgid-several', 'msgid', 'message', 10, (m, r) => setHeader(m, 'Message-ID', [`<a${nonce(r)}@x>`, `<b${nonce(r)}@x>`, '<>', header(m, 'message-id') ?? '<c@x>'])),
  op('msgid-empty', 'msgid', 'message', 10, (m, r) => setHeader(m, r.pick(['Message-ID', 'Message-Id', 'MESSAGE-ID']), [r.pick(['', '<>', ' ', '<', '>', '< >'])])),
  op('msgid-brackets', 'msgid', 'message', 10, (m, r) => setHeader(m, 'Message-ID', [r.pick(['<<a@b>>', '<<a@b>', '<a@b>>', '< a@b >', '<a@b> <c@d>', '<a <b@c>>', 'a@b', '(comment) <a@b>'])])),
  op('msgid-long', 'msgid', 'message', 10, (m, r) => setHeader(m, 'Message-ID', [`<${'x'.repeat(r.pick([2048, 998, 999, 986, 70_000]))}@example.org>`])),
  op('msgid-missing', 'msgid', 'message', 10, (m) => setHeader(m, 'Message-ID', [])),
  // The ident of a message without a Message-ID is sha256:<hex of its bytes>; a message may claim that as its id.
  // Derived idents (`sha256:<hex>` without a Message-ID, `<id>#reused-<hex>` for a reused one) are
  // strings any mail may state as its own Message-ID: a message claims the ident of a later one.
  op('msgid-collision', 'msgid', 'batch', 10, (m, r) => {
    const sha = (x: string): string => createHash('sha256').update(Buffer.from(x, 'latin1')).digest('hex');
    const claim = (id: string): string => setHeader(setBody(m, `${bodyOf(m)}\n${nonce(r)}\n`), 'Message-ID', [`<${id}>`]);
    const variant = r.int(3);
    if (variant === 0) {
      const plain = setBody(setHeader(m, 'Message-ID', []), `${bodyOf(m)}\nnonce ${nonce(r)}\n`);
      return [claim(`sha256:${sha(plain)}`), plain]; // the other order is harmless: the claim then reads as a reuse
    }
    if (variant === 1) {
      const junk = `no header block ${nonce(r)}\n${bodyOf(m)}`; // refused by the parser: a failure row takes the ident
      return [claim(`sha256:${sha(junk)}`), junk];
    }
    const id = `reuse-${nonce(r)}@x`;
    const first = setHeader(m, 'Message-ID', [`<${id}>`]);
    const second = setHeader(setBody(first, `${bodyOf(m)}\nother ${nonce(r)}\n`), 'Subject', [`other content ${nonce(r)}`]);
    return [first, claim(`${id}#reused-${sha(second).slice(0, 16)}`), second];
  }),
  op('msgid-reuse', 'msgid', 'batch', 10, (m, r, c) => {
    const id = `<reuse-${nonce(r)}@x>`;
    const a = setHeader(m, 'Message-ID', [id]);
    const other = setHeader(setHeader(c.other(), 'Message-ID', [id]), 'Subject', [header(m, 'subject') ?? 'x']);
    return [a, a, setHeader(a, 'From', ['Someone Else via iommu <iommu@lists.example>']), other, setHeader(c.other(), 'Message-ID', [id])];
  }),
  op('refs-loop', 'references', 'batch', 10, (m, r, c) => {
    const ids = [0, 1, 2].map((i) => `loop${i}-${nonce(r)}@x`);
    const link = (s: string, own: string, refs: string[]): string =>
      setHeader(setHeader(setHeader(s, 'Message-ID', [`<${own}>`]), 'References', [refs.map((x) => `<${x}>`).join(' ')]), 'In-Reply-To', [`<${refs.at(-1)}>`]);
    return [link(m, ids[0]!, [ids[1]!]), link(c.other(), ids[1]!, [ids[0]!]), link(c.other(), ids[2]!, [ids[2]!, ids[0]!, ids[1]!, ids[2]!])];
  }),
  op('refs-self', 'references', 'message', 10, (m, r) => {
    const own = header(m, 'message-id') ?? `<self-${nonce(r)}@x>`;
    return setHeader(setHeader(setHeader(m, 'Message-ID', [own]), 'References', [`${own} ${own}`]), 'In-Reply-To', [own]);
  }),
  // A shared pool of 20,000 ids, so references from different cases meet and form loops across messages.
  op('refs-10k', 'references', 'message', 2, (m, r) =>
    setHeader(m, 'References', [Array.from({ length: 10_000 }, () => `<r${r.int(20_000)}@fuzz.invalid>`).join(r.pick([' ', '\n ', '']))])),
  op('refs-garbage', 'references', 'message', 10, (m, r) => setHeader(setHeader(m, 'In-Reply-To',
    [r.pick(['<a@b> <c@d> garbage', '<<>>', '<', '(x <y@z>) <w@v>', '', '<a@b'])]), 'References', [r.pick(['<<<<', '>>>> <a@b>', '<a@b><c@d><e@f>', 'a@b c@d', '<\0@x>'])])),
  op('b64-invalid-alphabet', 'base64', 'message', 10, (m, r) => withContent(m, 'text/plain; charset=utf-8', 'base64',
    sprinkle(b64(bodyOf(m)), r, ['!', '*', '\x80', '-', '_', '.', '\0', '====', ' ', '\r', '\xff\xfe'], 1 + r.int(40)))),
  op('b64-bad-padding', 'base64', 'message', 10, (m, r) => {
    const enc = b64(bodyOf(m)).replace(/=+$/, '');
    const variants = [enc, `${enc}===`, `${enc.slice(0, enc.length >> 1)}=${enc.slice(enc.length >> 1)}`, `${enc}A`, `=${enc}`, `${enc}=\n=\n=`, enc.slice(0, -1)];
    return withContent(m, r.pick(['text/plain; charset=utf-8', 'text/x-patch']), r.pick(['base64', 'BASE64', ' base64 ']), r.pick(variants));
  }),
  op('b64-gigantic', 'base64', 'message', HEAVY, (m, r) =>
    withContent(m, r.pick(['text/plain; charset=utf-8', 'application/octet-stream']), 'base64',
      r.chance(0.5) ? b64(fill(bodyOf(m) || 'x', 11 * MB)) : fill(b64(noise(r, 4096)) + '!@#\n', 15 * MB)), true),
  op('attachment-20mb', 'attachment', 'message', HEAVY, (m, r) => {
    const size = 20 * MB + r.int(8192) - 4096; // either side of parse.ts's 20 MiB attachment limit
    const big: Part = r.chance(0.5)
      ? attachment(fill(withDiff(''), size))
      : { type: 'application/octet-stream; name="blob.bin"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment', body: fill(b64(noise(r, 3 * 4096)), size) };
    return nested(m, multipart('mixed', `big-${nonce(r)}`, [{ type: 'text/plain', body: bodyOf(m) }, big], true));
  }, true),
  op('mbox-unescaped-from', 'mbox', 'mbox', 10, (m, r, c) => looseMbox([setBody(m, fromLines(bodyOf(m), r, false)), c.other()], r)),
  op('mbox-escaped-from', 'mbox', 'mbox', 10, (m, r, c) => looseMbox([setBody(m, fromLines(bodyOf(m), r, true)), c.other()], r)),
  op('mbox-only-from-line', 'mbox', 'mbox', 10, (m, r) =>
    r.pick([`${FROM_LINES[0]}\n`, `${FROM_LINES[0]}`, looseMbox(['', m, '', ''], r), `From x\nFrom y\n\nFrom z\n`, looseMbox([m, ''], r)])),
  op('mbox-crlf-mix', 'mbox', 'mbox', 10, (m, r, c) =>
    looseMbox([m, c.other(), c.other()], r).split('\n').map((l) => (r.chance(0.4) ? `${l}\r` : r.chance(0.02) ? `${l}\r\r` : l)).join('\n')),
  op('mbox-roundtrip', 'mbox', 'mbox', 10, (m, r, c) => writeMbox(roundTripMessages(m, r, c), c.format, r)),
  op('mbox-concat', 'mbox', 'mbox', 10, (m, r, c) => {
    const msgs = [m, ...Array.from({ length: 1 + r.int(5) }, () => c.other())];
    const glue = (): string => r.pick(['\n', '\n\n', '', '\n\n\n', '\r\n']);
    const out = msgs.map((x) => `${r.pick(FROM_LINES)}\n${x}`).join(glue());
    return `${r.chance(0.3) ? 'preamble garbage\n\n' : ''}${r.chance(0.5) ? out.replace(/\n+$/, '') : out}`;
  }),
  op('header-only', 'shape', 'message', 10, (m, r) => split(m).head + r.pick(['', '\n', '\n\n', '\r\n', '\r\n\r\n'])),
  op('body-only', 'shape', 'message', 10, (m) => bodyOf(m)),
  op('empty', 'shape', 'message', 10, () => ''),
  op('binary-noise', 'shape', 'message', 10, (_m, r) => noise(r, r.int(65_536))),
  op('header-noise', 'shape', 'message', 10, (m, r) => {
    const junk = [': novalue', `${noise(r, 12)}: x`, 'No-Colon-Line', ' leading-space: x', 'Key With Spaces: x', `X-${'h'.repeat(r.int(2000))}: y`,
      '\t', 'Subject', 'Subject:', 'Content-Type: multipart/mixed', 'Content-Type: text/plain; charset=', 'From: <<<>>>',
      'From: "unterminated <a@b>', `To: ${'a@b, '.repeat(1000)}`, 'Date:', 'Content-Transfer-Encoding: base64', 'MIME-Version: 9.9'];
    const { head } = split(m);
    const lines = head.split('\n');
    for (let n = 1 + r.int(30); n > 0; n--) lines.splice(r.int(lines.length + 1), 0, r.pick(junk));
    return join({ ...split(m), head: lines.join('\n') });
  }),
  op('bit-flip', 'shape', 'message', 10, (m, r) => {
    const b = Buffer.from(m, 'latin1');
    for (let n = 1 + r.int(32); n > 0 && b.length; n--) b[r.int(b.length)]! ^= 1 << r.int(8);
    return b.toString('latin1');
  }),
  op('splice', 'shape', 'message', 10, (m, r, c) => {
    const o = c.other();
    return m.slice(0, r.int(m.length + 1)) + o.slice(r.int(o.length + 1));
  }),
  op('date-garbage', 'date', 'message', 10, (m, r) => setHeader(m, 'Date', [r.pick(['', 'Mon, 99 Foo 99999 99:99:99 +9999', '9'.repeat(1000),
    '-1', 'Sat, 13 Sep 275760 00:00:01 +0000', 'Thu, 01 Jan 1970 00:00:00 -2400', '=?utf-8?q?=FF?=', '\0'])])),
  op('subject-huge-counter', 'subject', 'message', 10, (m, r) => setHeader(m, 'Subject', [`${r.pick(['[PATCH 999999/1]', '[PATCH 1/999999]',
    '[PATCH 9999/9999]', '[PATCH v9999 9999/9999]', '[PATCH v99999999999999999999 1/2]', '[PATCH 4294967296/4294967297]', '[PATCH -1/-1]'])} vfio: x`])),
  op('subject-zero', 'subject', 'message', 10, (m, r) => setHeader(m, 'Subject',
    [`${r.pick(['[PATCH v0 0/0]', '[PATCH 0/0]', '[PATCH v0 1/0]', '[PATCH 0/1]', '[PATCH v0 0000/0000]', '[PATCH 3/0]'])} vfio: x`])),
  op('subject-nested-brackets', 'subject', 'message', 10, (m, r) => {
    const k = 10_000;
    return setHeader(m, 'Subject', [r.pick([`${'['.repeat(k)}PATCH v2 1/2${']'.repeat(k)} x`, `${'['.repeat(k)}PATCH x`, '[]'.repeat(k), `${'[PATCH ['.repeat(k)}`])]);
  }),
  op('subject-grammar', 'subject', 'message', 10, (m, r) => setHeader(m, 'Subject', [r.pick(['Re: '.repeat(5000) + 'x', '[PATCH] '.repeat(5000),
    'Re: [PATCH v2 1/3] '.repeat(1000), '=?utf-8?q?=5BPATCH=20v2=201/2=5D?= x', '[PATCH\0v2 1/2] x', '[PATCHv2v3 1/2/3] x',
    '[PATCH,,,;;;v2] x', `x${' [v2]'.repeat(20_000)}`, `[PATCH] ${'RESEND: '.repeat(5000)}`, 'Re:'.repeat(10_000)])])),
  op('diff-hunk-counts', 'diff', 'message', 10, (m, r) => setBody(m, withDiff(bodyOf(m)).replace(/^@@ [^\n]*@@/gm, () =>
    r.pick(['@@ -1,99999999 +1,99999999 @@', '@@ -1,0 +1,0 @@', '@@ -99999999999999999999,1 +1 @@', '@@ -1 +1 @@', '@@ -1,-1 +1,2 @@', '@@ @@'])))),
  op('diff-dotdot-paths', 'diff', 'message', 10, (m, r) => setBody(m, withDiff(bodyOf(m)).replace(/^(diff --git|---|\+\+\+) \S+/gm, (_x, lead: string) =>
    `${lead} ${r.pick(['a/../../etc/passwd', '/etc/shadow', '"a/quoted\\tname"', `a/${'x/'.repeat(2000)}f`, 'a/.git/config', 'a/', '..', 'a/\0nul', 'b/../../..'])}`))),
  op('diff-100k-files', 'diff', 'message', HEAVY, (m) => setBody(m, `many files\n---\n${Array.from({ length: 100_000 },
    (_x, i) => `diff --git a/f${i} b/f${i}\n--- a/f${i}\n+++ b/f${i}\n@@ -1 +1 @@\n-a\n+b\n`).join('')}`), true),
  op('diff-truncated', 'diff', 'message', 10, (m, r) => {
    const body = withDiff(bodyOf(m));
    const start = body.search(/^diff --git /m);
    return setBody(m, body.slice(0, start + r.int(body.length - start + 1)) + r.pick(['', '\n@@ -1,3 +1,3 @@\n', '\n\\ No newline', '\nGIT binary patch\nliteral 99999\n']));
  }),
] as const;

export type OperatorId = (typeof OPERATORS)[number]['id'];
export type Operator = (typeof OPERATORS)[number];

/** What one case feeds the ingestor: messages to `add`, or an mbox stream to split first. */
export type CaseInput =
  | { kind: 'messages'; messages: Buffer[] }
  | {
    kind: 'mbox';
    bytes: Buffer;
    format: MboxFormat;
    /** Through the path `vfio-review ingest` takes (a file, readMbox, Ingestor.addStream on worker threads), not split in memory. */
    stream: boolean;
    gzip: boolean;
    chunkSeed: number;
    /** The messages a reader must give back, when the operator wrote the mbox properly. */
    expected: Buffer[] | null;
  };

export interface FuzzCase {
  index: number;
  /** The operators applied, in order; the first one decides the shape. */
  operators: OperatorId[];
  seedIndex: number;
  input: CaseInput;
}

function mboxCase(index: number, operators: OperatorId[], seedIndex: number, mbox: string, expected: string[] | null, format: MboxFormat, r: Rng): FuzzCase {
  const bytes = Buffer.from(mbox, 'latin1');
  const want = expected && expected.map((m) => Buffer.from(m, 'latin1'));
  // One mbox case in 40 takes the whole `vfio-review ingest` path: a worker pool per case costs ~1 s of wall time.
  const input = { kind: 'mbox', bytes, format, stream: r.chance(0.025), gzip: r.chance(0.5), chunkSeed: r.int(2 ** 31), expected: want } as const;
  return { index, operators, seedIndex, input };
}

/** Messages for a properly written mbox: From-line confusion, CRLF, empty, unterminated, a first line reading `From `. */
function roundTripMessages(m: string, r: Rng, c: Ctx): string[] {
  const msgs = [m, ...Array.from({ length: r.int(5) }, () => c.other())];
  return msgs.map((x) => {
    switch (r.int(7)) {
      case 0: return setBody(x, fromLines(bodyOf(x), r, r.chance(0.5)));
      case 1: return x.replace(/\r?\n/g, '\r\n');
      case 2: return '';
      case 3: return x.replace(/\n+$/, '');
      case 4: return `From ${x}`;
      case 5: return `${x}\n\n\nFrom the end\n\n`;
      default: return x;
    }
  });
}

function weighted(ops: readonly Operator[], r: Rng): Operator {
  let x = r.next() * ops.reduce((s, o) => s + o.weight, 0);
  for (const o of ops) if ((x -= o.weight) < 0) return o;
  return ops[ops.length - 1]!;
}

/**
 * Case `index` of the campaign with `seed`, built from `seeds` (latin1 strings). The same
 * (seeds, seed, index) always gives the same bytes. `only` restricts the choice to those
 * operators; `combine` (default: on unless `only` is given) lets a quarter of the single-message
 * cases take one or two further light operators, so a targeted test exercises exactly one.
 */
export function makeCase(seeds: readonly string[], seed: number, index: number, only?: readonly OperatorId[], combine = !only): FuzzCase {
  const r = caseRng(seed, index);
  const ops: readonly Operator[] = only ? OPERATORS.filter((o) => only.includes(o.id)) : OPERATORS;
  if (ops.length === 0 || seeds.length === 0) throw new Error('makeCase: no operators or no seeds');
  const seedIndex = r.int(seeds.length);
  const ctx: Ctx = { other: () => seeds[r.int(seeds.length)]!, format: r.chance(0.8) ? 'mboxrd' : 'mboxo' };
  const first = weighted(ops, r);
  const operators: OperatorId[] = [first.id];
  const out = first.apply(seeds[seedIndex]!, r, ctx);
  if (typeof out === 'object' && !Array.isArray(out)) return mboxCase(index, operators, seedIndex, out.mbox, out.expected, ctx.format, r);
  if (first.shape === 'mbox') return mboxCase(index, operators, seedIndex, out as string, null, ctx.format, r);
  let messages = Array.isArray(out) ? out : [out];
  if (first.shape === 'message' && !first.heavy && combine && r.chance(0.25)) {
    const small = ops.filter((o) => o.shape === 'message' && !o.heavy);
    for (let n = 1 + r.int(2); n > 0; n--) {
      const next = weighted(small, r);
      operators.push(next.id);
      messages = messages.map((m) => next.apply(m, r, ctx) as string);
    }
  }
  return { index, operators, seedIndex, input: { kind: 'messages', messages: messages.map((m) => Buffer.from(m, 'latin1')) } };
}
