/**
 * Which lines of `after` are new and which lines of `before` are gone: a
 * Myers diff over lines. Used where no git diff is at hand (rule tests, the
 * diff-alone path); git computes the same for applied series.
 */
export function lineDiff(before: string, after: string): { added: Set<number>; removed: Set<number> } {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const b = after === '' ? [] : after.replace(/\n$/, '').split('\n');
  // Trim the common head and tail: fixtures and patches differ in a small middle.
  let lo = 0;
  while (lo < a.length && lo < b.length && a[lo] === b[lo]) lo++;
  let ha = a.length;
  let hb = b.length;
  while (ha > lo && hb > lo && a[ha - 1] === b[hb - 1]) {
    ha--;
    hb--;
  }
  const A = a.slice(lo, ha);
  const B = b.slice(lo, hb);
  const n = A.length;
  const m = B.length;
  const max = n + m;
  const v = new Map<number, number>([[1, 0]]);
  const trace: Map<number, number>[] = [];
  outer: for (let d = 0; d <= max; d++) {
    trace.push(new Map(v));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && (v.get(k - 1) ?? -1) < (v.get(k + 1) ?? -1)) ? (v.get(k + 1) ?? 0) : (v.get(k - 1) ?? 0) + 1;
      let y = x - k;
      while (x < n && y < m && A[x] === B[y]) {
        x++;
        y++;
      }
      v.set(k, x);
      if (x >= n && y >= m) break outer;
    }
  }
  const added = new Set<number>();
  const removed = new Set<number>();
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d > 0; d--) {
    const vv = trace[d]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && (vv.get(k - 1) ?? -1) < (vv.get(k + 1) ?? -1)) ? k + 1 : k - 1;
    const px = vv.get(prevK) ?? 0;
    const py = px - prevK;
    while (x > px && y > py) {
      x--;
      y--;
    }
    if (x === px) added.add(lo + py + 1);
    else removed.add(lo + px + 1);
    x = px;
    y = py;
  }
  return { added, removed };
}
