/**
 * mbox streams for the malformed-mail campaign: loose framing (what sloppy archives hold), a
 * proper mboxrd/mboxo writer whose messages are known in advance, and a reference reader.
 *
 * The reference reader is the oracle for {@link MboxSplitter}: the same documented rules
 * (src/ingest/mbox-source.ts), written the naive way, over the whole stream, one line at a
 * time, with no chunking and no carry. Where the two disagree on any byte, one of them is
 * wrong. For mboxes made by {@link writeMbox} there is a second oracle, stronger still: the
 * messages that were written.
 */
import type { MboxFormat, RawMail } from '../ingest/mbox-source.js';
import { sprinkle } from './mail-edit.js';
import type { Rng } from './rng.js';

export const FROM_LINES = ['From MAILER-DAEMON Thu Jan  1 00:00:00 1970', 'From dev1@example.org Fri Mar  1 10:00:00 2024', 'From ', 'From x'];

/** Loose framing: a From_ line before each message, one line break after it, no escaping at all. */
export const looseMbox = (msgs: readonly string[], r: Rng): string =>
  msgs.map((m) => `${r.pick(FROM_LINES)}\n${m}${m.endsWith('\n') ? '' : '\n'}`).join('\n');

/** Body lines that look like From_ lines, some right after a blank line (where a reader cuts). */
export const fromLines = (body: string, r: Rng, escaped: boolean): string =>
  sprinkle(body, r, escaped ? ['\n>From here on\n', '\n>>From x\n', '\n\n>From y\n', '\n>>>From z'] :
    ['\nFrom here on\n', '\n\nFrom the top\n', '\nFrom:\n', '\n\nFrom x Thu Jan  1 00:00:00 1970\n'], 1 + r.int(4));

// Line starts are LF only: the /m flag would also take a lone CR for a line break.
const ESCAPE: Record<MboxFormat, RegExp> = { mboxrd: /(^|\n)(>*From )/g, mboxo: /(^|\n)(From )/g };
const UNESCAPE: Record<MboxFormat, RegExp> = { mboxrd: /^>+From /, mboxo: /^>From / };

/**
 * Writes `msgs` as an mbox in `format`: each message gets a final line break if it lacks one,
 * its From-lines escaped, a From_ line before and a blank line after. Returns the stream and
 * what a reader must give back: the messages themselves for mboxrd; for mboxo, the messages
 * with `>From ` lines turned into `From ` (the ambiguity mboxrd was invented to remove).
 */
export function writeMbox(msgs: readonly string[], format: MboxFormat, r: Rng): { mbox: string; expected: string[] } {
  const expected: string[] = [];
  let mbox = '';
  for (const m of msgs) {
    const body = m === '' || m.endsWith('\n') ? m : `${m}\n`;
    const escaped = body.replace(ESCAPE[format], '$1>$2');
    mbox += `${r.pick(FROM_LINES)}\n${escaped}\n`;
    expected.push(format === 'mboxrd' ? body : escaped.replace(/(^|\n)>From /g, '$1From '));
  }
  return { mbox, expected };
}

const isBlank = (line: string): boolean => line === '\n' || line === '\r\n';

/**
 * Splits `bytes` by the rules MboxSplitter documents: a line starting `From ` separates
 * messages at the start of the stream or right after a blank line (LF or CRLF); that blank
 * line, and a blank last line of the stream, are framing; one `>` is removed from body lines
 * matching `^>+From ` (mboxrd) or `^>From ` (mboxo); bytes before the first From_ line are a
 * message when there are any. Locators are the From_ line offsets, as readMbox gives them.
 */
export function referenceSplit(bytes: Buffer, format: MboxFormat): RawMail[] {
  const s = bytes.toString('latin1');
  const out: RawMail[] = [];
  let cur: string[] = [];
  let opened = false;
  let offset = 0;
  let prevBlank = false;
  let lastBlank = false;
  const close = (): void => {
    const msg = cur.join('');
    if (opened || msg.length > 0) out.push({ bytes: Buffer.from(msg, 'latin1'), locator: `offset:${offset}` });
  };
  for (let at = 0; at < s.length;) {
    const nl = s.indexOf('\n', at);
    const end = nl < 0 ? s.length : nl + 1;
    const line = s.slice(at, end);
    if (line.startsWith('From ') && (at === 0 || prevBlank)) {
      if (at > 0) cur.pop();
      close();
      cur = [];
      opened = true;
      offset = at;
    } else {
      cur.push(UNESCAPE[format].test(line) ? line.slice(1) : line);
    }
    prevBlank = isBlank(line);
    lastBlank = prevBlank;
    at = end;
  }
  if (lastBlank) cur.pop();
  close();
  return out;
}
