/**
 * Edits on raw mail held as 'latin1' strings (one char per byte, so NUL, invalid UTF-8 and lone
 * CRs survive the round trip to a Buffer). Tolerant of anything: they also run on input that
 * other mutations already broke.
 */
import type { Rng } from './rng.js';

export const MB = 1024 * 1024;

export interface Split { head: string; eol: string; body: string }

export function split(m: string): Split {
  const sep = /\r?\n\r?\n/.exec(m);
  if (!sep) return { head: m, eol: '\n', body: '' };
  return { head: m.slice(0, sep.index), eol: sep[0].startsWith('\r') ? '\r\n' : '\n', body: m.slice(sep.index + sep[0].length) };
}
export const join = (s: Split): string => s.head + s.eol + s.eol + s.body;

/** Header fields with their folded continuation lines attached (split at LF; CRs stay on their lines). */
export function fieldsOf(head: string): string[] {
  const out: string[] = [];
  for (const l of head.split('\n')) {
    if ((l[0] === ' ' || l[0] === '\t') && out.length) out[out.length - 1] += '\n' + l;
    else out.push(l);
  }
  return out;
}
export const nameOf = (f: string): string => f.slice(0, Math.max(0, f.indexOf(':'))).trim().toLowerCase();

/** Replaces every `name` field by one field per value, where the first one stood (else at the end). */
export function setHeader(m: string, name: string, values: readonly string[]): string {
  const s = split(m);
  const key = name.toLowerCase();
  const fields = fieldsOf(s.head);
  const at = fields.findIndex((f) => nameOf(f) === key);
  const kept = fields.filter((f) => nameOf(f) !== key);
  const cr = s.eol === '\r\n' ? '\r' : '';
  kept.splice(at < 0 ? kept.length : at, 0, ...values.map((v) => `${name}: ${v}${cr}`));
  return join({ ...s, head: kept.join('\n') });
}

export function header(m: string, name: string): string | undefined {
  const f = fieldsOf(split(m).head).find((x) => nameOf(x) === name.toLowerCase());
  return f?.slice(f.indexOf(':') + 1).replace(/\r?\n[ \t]/g, ' ').trim();
}

export const setBody = (m: string, body: string): string => join({ ...split(m), body });
export function withContent(m: string, type: string, cte: string | null, body: string): string {
  return setBody(setHeader(setHeader(m, 'Content-Type', [type]), 'Content-Transfer-Encoding', cte ? [cte] : []), body);
}
export const bodyOf = (m: string): string => split(m).body;

/** Inserts `n` pieces at random offsets (from the end backwards, so earlier offsets stay valid). */
export function sprinkle(s: string, r: Rng, pieces: readonly string[], n: number): string {
  const at = Array.from({ length: n }, () => r.int(s.length + 1)).sort((a, b) => b - a);
  let out = s;
  for (const i of at) out = out.slice(0, i) + r.pick(pieces) + out.slice(i);
  return out;
}

export function noise(r: Rng, n: number): string {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = r.int(256);
  return b.toString('latin1');
}

export const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64').replace(/.{76}/g, '$&\n');
/** `s` repeated up to exactly `n` chars. */
export const fill = (s: string, n: number): string => s.repeat(Math.ceil(n / s.length)).slice(0, n);
export const nonce = (r: Rng): string => r.int(2 ** 31).toString(36);

export const DIFF = [
  'diff --git a/drivers/vfio/vfio_main.c b/drivers/vfio/vfio_main.c',
  'index 1111111..2222222 100644',
  '--- a/drivers/vfio/vfio_main.c',
  '+++ b/drivers/vfio/vfio_main.c',
  '@@ -1,3 +1,4 @@',
  ' a', '+b', ' c', ' d', '',
].join('\n');
export const withDiff = (body: string): string => (/^diff --git /m.test(body) ? body : `${body}\n---\n${DIFF}`);

export const BAD_UTF8 = ['\xc3\x28', '\xa0\xa1', '\xe2\x28\xa1', '\xf0\x28\x8c\xbc', '\xf8\xa1\xa1\xa1\xa1', '\xed\xa0\x80',
  '\xc0\xaf', '\xff', '\xfe\xff', '\xef\xbb\xbf', '\xe2\x82', '\xf4\x90\x80\x80'];
export const BAD_WORDS = ['=?utf-8?B?/w==?=', '=?unknown-xyz?Q?=FF=FE?=', '=?utf-8?Q?=E2=82?=', '=?utf-7?B?K0FHRS0=?=',
  '=?iso-2022-jp?B?GyRCJCIkJBsoQg?=', '=?utf-8?B?', '=??=', '=?utf-8*en?Q?x?=', '=?utf-8?X?abc?=', '=?utf-16?B?2D0=?='];

// ---- multipart builders ----

export interface Part { type: string; body: string }
export function multipart(sub: string, boundary: string, parts: readonly Part[], close: boolean): Part {
  const body = parts.map((p) => `--${boundary}\nContent-Type: ${p.type}\n\n${p.body}\n`).join('') + (close ? `--${boundary}--\n` : '');
  return { type: `multipart/${sub}; boundary="${boundary}"`, body };
}
// The part header is written as `Content-Type: ${type}`, so a type may carry further header lines.
export const attachment = (body: string): Part => ({ type: 'text/x-patch; name="0001.patch"\nContent-Disposition: attachment', body });
export const asPart = (m: string): Part => ({ type: header(m, 'content-type') ?? 'text/plain', body: bodyOf(m) });
export const nested = (m: string, p: Part): string => withContent(m, p.type, null, p.body);
