import { describe, expect, it } from 'vitest';
import { MboxSplitter, type MboxFormat } from '../../src/ingest/mbox-source.js';
import { referenceSplit, writeMbox } from '../../src/fuzz/mbox.js';
import { mulberry32 } from '../../src/fuzz/rng.js';

/**
 * The oracles the mail campaign judges mbox From-line confusion by: a proper mboxrd/mboxo
 * writer (the messages written are what a reader must give back) and a naive reference reader
 * of the documented separator rule. Here they are pinned on hand-made streams.
 */
const split = (s: string, f: MboxFormat = 'mboxrd'): string[] => {
  const sp = new MboxSplitter(f);
  return [...sp.push(Buffer.from(s, 'latin1')), ...sp.end()].map((m) => m.bytes.toString('latin1'));
};
const ref = (s: string, f: MboxFormat = 'mboxrd'): string[] => referenceSplit(Buffer.from(s, 'latin1'), f).map((m) => m.bytes.toString('latin1'));

const TRICKY = [
  'Subject: a\n\nFrom the top of the body\n>From quoted\n>>From twice\n',
  'Subject: b\r\n\r\nCRLF body\r\nFrom here\r\n',
  '',
  'Subject: c\n\nno final newline',
  'From the first line\nSubject: d\n\nx\n',
  'Subject: e\n\ntrailing blank lines\n\n\n',
];

describe('mbox writer and reference reader', () => {
  it('mboxrd: what was written is read back byte for byte', () => {
    const { mbox, expected } = writeMbox(TRICKY, 'mboxrd', mulberry32(1));
    expect(expected).toEqual(TRICKY.map((m) => (m === '' || m.endsWith('\n') ? m : `${m}\n`)));
    expect(split(mbox)).toEqual(expected);
    expect(ref(mbox)).toEqual(expected);
  });

  it('mboxo: `>From ` lines come back as `From ` (the format cannot tell them apart)', () => {
    const { mbox, expected } = writeMbox(TRICKY, 'mboxo', mulberry32(2));
    expect(expected[0]).toBe('Subject: a\n\nFrom the top of the body\nFrom quoted\n>>From twice\n');
    expect(split(mbox, 'mboxo')).toEqual(expected);
    expect(ref(mbox, 'mboxo')).toEqual(expected);
  });

  it('separates only at a From_ line that opens the stream or follows a blank line', () => {
    const s = 'From a\nx\nFrom inside a paragraph\n\nFrom b\ny\n\n\nFrom c\n';
    expect(ref(s)).toEqual(['x\nFrom inside a paragraph\n', 'y\n\n', '']);
    expect(split(s)).toEqual(ref(s));
  });

  it('keeps a preamble with bytes, drops the framing blank line at the end of the stream', () => {
    const s = 'junk before\n\nFrom a\nbody\n\n';
    expect(ref(s)).toEqual(['junk before\n', 'body\n']);
    expect(split(s)).toEqual(ref(s));
    expect(referenceSplit(Buffer.from(s), 'mboxrd').map((m) => m.locator)).toEqual(['offset:0', 'offset:13']);
  });
});
