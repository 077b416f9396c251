/**
 * Which series vfio-review reviews. The defaults are the vfio/iommu paths the
 * maintainers own; both lists are configurable. Others are stored, never queued.
 */
export interface Relevance {
  /** Path prefixes or globs ('*' within a component, '**' across) of touched files. */
  paths: string[];
  /** Words that, as a subject prefix token or the leading "subsys:" of a title, make a series relevant. */
  subjectWords: string[];
}

export function defaultRelevance(): Relevance {
  return {
    paths: [
      'drivers/vfio/',
      'drivers/iommu/',
      'include/linux/vfio*.h',
      'include/uapi/linux/vfio*.h',
      'include/linux/iommu*.h',
      'include/uapi/linux/iommu*.h',
      'drivers/s390/crypto/vfio_ap*',
      'drivers/s390/cio/vfio_ccw*',
      'virt/kvm/vfio.c',
      'virt/kvm/vfio.h',
      'samples/vfio-mdev/',
    ],
    subjectWords: ['vfio', 'iommu', 'iommufd', 'vfio-ap', 'vfio-ccw', 'vfio_ap', 'vfio_ccw', 'mdev'],
  };
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern ending in '/' is a directory prefix.
  return new RegExp(`^${re}${glob.endsWith('/') ? '' : '$'}`);
}

const matchers = new WeakMap<string[], (path: string) => boolean>();

export function pathMatcher(patterns: string[]): (path: string) => boolean {
  let m = matchers.get(patterns);
  if (!m) {
    const res = patterns.map(globToRegExp);
    m = (p) => res.some((r) => r.test(p));
    matchers.set(patterns, m);
  }
  return m;
}

/** Decides relevance and says why; `null` reason means not relevant. */
export function relevanceOf(
  rel: Relevance,
  input: { paths: string[]; prefixes: string[]; titles: string[] },
): { relevant: boolean; why: string | null } {
  const match = pathMatcher(rel.paths);
  const hit = input.paths.find(match);
  if (hit) return { relevant: true, why: `touches ${hit}` };
  const words = new Set(rel.subjectWords.map((w) => w.toLowerCase()));
  const pre = input.prefixes.find((p) => words.has(p.toLowerCase()));
  if (pre) return { relevant: true, why: `subject prefix [${pre}]` };
  for (const t of input.titles) {
    // "vfio/pci: ...", "iommu/vt-d: ...", "s390/vfio-ap: ...", "docs: vfio: ...": the leading subsystem tags.
    for (const subsys of leadingTags(t)) {
      const w = subsys.toLowerCase().split(/[/,]/).find((x) => words.has(x));
      if (w) return { relevant: true, why: `subject "${subsys}:"` };
    }
  }
  return { relevant: false, why: null };
}

/** Up to three leading "tag:" segments of a title ("docs: vfio: Add x" gives docs, vfio). */
function leadingTags(title: string): string[] {
  const out: string[] = [];
  let rest = title;
  for (let i = 0; i < 3; i++) {
    const m = /^(?<tag>[\w./,-]+):\s+/.exec(rest);
    if (!m?.groups) break;
    out.push(m.groups.tag!);
    rest = rest.slice(m[0].length);
  }
  return out;
}
