import { git, type GitOptions } from './git.js';
import type { BaseCandidate } from './types.js';

/**
 * One mapping rule: when every key it sets matches, its refs are candidates. `list` matches a
 * list address or List-Id (`kvm` matches `kvm@vger.kernel.org` and `kvm.vger.kernel.org`),
 * `prefix` a subject prefix (`vfio` matches `vfio` and `vfio/pci`, case-insensitively),
 * `path` a touched path glob (`*` within a component, `**` across components, `?` one char).
 */
export interface BaseMapRule {
  list?: string;
  prefix?: string;
  path?: string;
  refs: string[];
}

/** The configured map from series traits to candidate base refs, in priority order. */
export interface BaseMap {
  rules: BaseMapRule[];
  /** Tried last, e.g. `HEAD` or `origin/master`. */
  default: string;
}

/** What selectCandidates looks at. */
export interface CandidateInput {
  /** The `base-commit:` the series names, if any. */
  baseCommit: string | null;
  /** `Based-on:` values and refs the caller resolved for prerequisite series, in order. */
  hints: string[];
  list: string | null;
  prefixes: string[];
  touchedPaths: string[];
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      // `a/**/b` also matches `a/b`
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function listMatches(rule: string, list: string | null): boolean {
  if (!list) return false;
  const l = list.toLowerCase().replace(/^<|>$/g, '');
  const r = rule.toLowerCase();
  return l === r || l.startsWith(`${r}@`) || l.startsWith(`${r}.`);
}

function prefixMatches(rule: string, prefixes: string[]): boolean {
  const r = rule.toLowerCase();
  return prefixes.some((p) => {
    const q = p.toLowerCase();
    return q === r || q.startsWith(`${r}/`);
  });
}

function ruleMatches(rule: BaseMapRule, input: CandidateInput): boolean {
  if (rule.list === undefined && rule.prefix === undefined && rule.path === undefined) return false;
  if (rule.list !== undefined && !listMatches(rule.list, input.list)) return false;
  if (rule.prefix !== undefined && !prefixMatches(rule.prefix, input.prefixes)) return false;
  if (rule.path !== undefined) {
    const re = globToRegExp(rule.path);
    if (!input.touchedPaths.some((p) => re.test(p))) return false;
  }
  return true;
}

/**
 * The base cascade for one series version: its `base-commit:`, then the hints, then the refs
 * of every matching map rule (in rule order), then the default. A ref listed twice is kept
 * once, at its first (highest) position.
 */
export function selectCandidates(input: CandidateInput, map: BaseMap): BaseCandidate[] {
  const out: BaseCandidate[] = [];
  const seen = new Set<string>();
  const add = (ref: string, why: BaseCandidate['why']): void => {
    const r = ref.trim();
    if (r === '' || seen.has(r)) return;
    seen.add(r);
    out.push({ ref: r, why });
  };
  if (input.baseCommit) add(input.baseCommit, 'base-commit');
  for (const h of input.hints) add(h, 'hint');
  for (const rule of map.rules) if (ruleMatches(rule, input)) for (const r of rule.refs) add(r, 'mapped');
  add(map.default, 'default');
  return out;
}

// Refs come from mail (base-commit:, Based-on:), so they are untrusted: only plain names and
// hex ids, no leading '-' (option injection), no revision syntax (`:/text` searches history,
// `@{...}` reads reflogs) and no `..` ranges.
const REF_NAME = /^[A-Za-z0-9_][A-Za-z0-9_./+-]*$/;

/** Why `ref` may not be handed to rev-parse, or null when it may. */
export function refProblem(ref: string): string | null {
  if (ref.length > 255) return 'ref name too long';
  if (!REF_NAME.test(ref)) return `not a plain ref name or commit id: ${JSON.stringify(ref.slice(0, 100))}`;
  if (ref.includes('..') || ref.endsWith('.lock') || ref.endsWith('/') || ref.endsWith('.')) return `not a valid ref name: ${ref}`;
  return null;
}

/** The commit `ref` names, via `git rev-parse --verify <ref>^{commit}`, or null. */
export async function resolveCommit(ref: string, opts: GitOptions): Promise<string | null> {
  if (refProblem(ref)) return null;
  const r = await git(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`], opts);
  const id = r.stdout.trim();
  return r.code === 0 && /^[0-9a-f]{40,64}$/.test(id) ? id : null;
}
