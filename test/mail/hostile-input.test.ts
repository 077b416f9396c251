import { describe, expect, it } from 'vitest';
import { closeDanglingHeader, parseMessage } from '../../src/mail/parse.js';
import { parseTrailers } from '../../src/mail/trailers.js';

/**
 * Regressions found by the robustness campaign (test/robustness). Each input used to hang the
 * parse: forever (mailparser) or for minutes (regex backtracking on long blank runs). The
 * sizes are those the campaign used; the test timeout is the guard.
 */
const msg = (head: string[], body = ''): Buffer => Buffer.from(`${head.join('\n')}\n${body}`);

describe('mailparser: an inline message/rfc822 header block ended by the end of input', () => {
  it('settles with a parsed message instead of pending forever', async () => {
    const p = await parseMessage(msg(['Subject: x', 'Message-ID: <h@x>', 'Content-Type: message/rfc822', 'Content-Disposition: inline']));
    expect(p.messageId).toBe('h@x');
    expect(p.subject).toBe('x');
  }, 20_000);

  it('settles when the dangling block is nested in a multipart', async () => {
    const head = ['Subject: y', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: message/rfc822', 'Content-Disposition: inline'];
    expect((await parseMessage(msg(head))).subject).toBe('y');
  }, 20_000);

  it('settles when the type is only guessed from an inline filename="x.eml"', async () => {
    const p = await parseMessage(Buffer.from('Subject: z\nContent-Disposition: inline; filename="fwd.eml"'));
    expect(p.subject).toBe('z');
    const nested = ['Subject: w', 'Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Disposition: inline; filename="fwd.eml"'];
    expect((await parseMessage(msg(nested))).subject).toBe('w');
  }, 20_000);

  it('adds a blank line only where the tail after the last blank line may be such a header block', () => {
    const dangling = Buffer.from('A: b\n\nContent-Type: message/rfc822\n');
    expect(closeDanglingHeader(dangling).toString()).toBe('A: b\n\nContent-Type: message/rfc822\n\n');
    expect(closeDanglingHeader(Buffer.from('Content-Type: MESSAGE/RFC822')).toString()).toBe('Content-Type: MESSAGE/RFC822\n\n');
    const closed = Buffer.from('Content-Type: message/rfc822\n\n');
    expect(closeDanglingHeader(closed)).toBe(closed);
    const plain = Buffer.from('Subject: x\n\nbody\n');
    expect(closeDanglingHeader(plain)).toBe(plain);
  });
});

describe('in-body From: with a long blank run (was cubic)', () => {
  const patch = (from: string): Buffer => msg(['Subject: [PATCH] x', 'Message-ID: <w@x>'],
    `\n${from}\n\nFix.\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n`);

  it('parses in bounded time and takes no author from it', async () => {
    expect((await parseMessage(patch(`From: ${' '.repeat(3000)}x`))).bodyAuthor).toBeNull();
  }, 20_000);

  it.each([
    ['From: "Dev One" <Dev1@Example.org>', { name: 'Dev One', addr: 'dev1@example.org' }],
    ['From: Dev One <dev1@example.org>  ', { name: 'Dev One', addr: 'dev1@example.org' }],
    ['From: <dev1@example.org>', { name: null, addr: 'dev1@example.org' }],
    ['From: dev1@example.org', { name: null, addr: 'dev1@example.org' }],
    ['From: "Dev <dev1@example.org>', { name: 'Dev', addr: 'dev1@example.org' }],
    ['From: a<b<c@d>', { name: null, addr: 'a<b<c@d>' }],
    ['From: a<b <c@d>', null],
    ['From: a b@c', null],
    ['From: @x', null],
  ])('%s', async (line, author) => {
    expect((await parseMessage(patch(line))).bodyAuthor).toEqual(author);
  });
});

describe('trailers with a long blank run (was quadratic)', () => {
  it('parses in bounded time', () => {
    expect(parseTrailers(`Cc: x${' '.repeat(160_000)}y`)).toEqual([]);
    expect(parseTrailers(`Acked-by: A <a@b>${' '.repeat(160_000)}`)).toEqual([{ name: 'Acked-by', value: 'A <a@b>' }]);
  }, 20_000);

  it('reads values as before: trailing blanks dropped, comments after the address', () => {
    expect(parseTrailers('Cc: stable@vger.kernel.org # 6.1+\nReviewed-by:\tR <r@x>\t \nFixes: 0123456789ab ("x")\nAcked-by: \nCc: a b\rc <d@e>')).toEqual([
      { name: 'Cc', value: 'stable@vger.kernel.org # 6.1+' },
      { name: 'Reviewed-by', value: 'R <r@x>' },
      { name: 'Fixes', value: '0123456789ab ("x")' },
    ]);
  });
});

describe('quoted-printable with a long blank run inside a line (libqp was quadratic: 43 s)', () => {
  const body = `Cc: x${' '.repeat(170_000)}y\nmore\n`;
  it('is refused quickly with a reason, and only when the message is quoted-printable', async () => {
    const qp = msg(['Subject: q', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable'], `\n${body}`);
    await expect(parseMessage(qp)).rejects.toThrow(/quoted-printable message with long blank runs inside lines/);
    const plain = msg(['Subject: p', 'Content-Type: text/plain; charset=utf-8'], `\n${body}`);
    expect((await parseMessage(plain)).text).toBe(body);
  }, 20_000);

  it('decodes quoted-printable whose long blank runs end their lines (those cost nothing)', async () => {
    const qp = msg(['Subject: q', 'Content-Transfer-Encoding: quoted-printable'], `\nx${' '.repeat(170_000)}\ny=41\n`);
    expect((await parseMessage(qp)).text).toBe('x\nyA\n');
  }, 20_000);
});
