/**
 * Access paths from expression text, for the places where only text survives: lock annotation
 * arguments (`__must_hold(&iommu->lock)`) and call arguments substituted into a callee's lock
 * expression. Only `&`, `*`, names, `->m`, `.m`, `[i]` and parentheses are understood.
 */
import type { AccessPath, AccessStep } from './events.js';

/** The access path of a simple lvalue text, or null when it is not one. A leading `&` is dropped. */
export function textPath(text: string): AccessPath | null {
  let s = text.replace(/\s+/g, '');
  s = s.replace(/^&/, '');
  let stars = 0;
  while (s.startsWith('*')) {
    stars++;
    s = s.slice(1);
  }
  while (s.startsWith('(') && s.endsWith(')') && balanced(s.slice(1, -1))) s = s.slice(1, -1);
  s = s.replace(/^&/, '');
  const m = /^(?<root>[A-Za-z_]\w*)(?<rest>.*)$/.exec(s);
  if (!m) return null;
  const steps: AccessStep[] = [];
  let rest = m.groups!.rest!;
  while (rest.length) {
    const f = /^(?<op>->|\.)(?<member>[A-Za-z_]\w*)/.exec(rest);
    if (f) {
      steps.push({ op: f.groups!.op as '->' | '.', member: f.groups!.member! });
      rest = rest.slice(f[0].length);
      continue;
    }
    if (rest.startsWith('[')) {
      const close = matchBracket(rest);
      if (close < 0) return null;
      steps.push({ op: '[]' });
      rest = rest.slice(close + 1);
      continue;
    }
    return null;
  }
  for (let i = 0; i < stars; i++) steps.push({ op: '*' });
  return { root: { kind: 'var', name: m.groups!.root! }, steps };
}

function balanced(s: string): boolean {
  let d = 0;
  for (const c of s) {
    if (c === '(') d++;
    else if (c === ')' && --d < 0) return false;
  }
  return d === 0;
}

function matchBracket(s: string): number {
  let d = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '[') d++;
    else if (s[i] === ']' && --d === 0) return i;
  }
  return -1;
}
