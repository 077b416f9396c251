import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { VrError } from '../errors.js';
import { REPLY_KINDS, type ReplyKind } from './types.js';
import { finishBody } from './text.js';

export const PROMPTS_DIR = fileURLToPath(new URL('../../prompts/', import.meta.url));

/** One reply template: prompts/<kind>.md, front matter listing every variable, then the text. */
export interface Template {
  kind: ReplyKind;
  description: string;
  /** name -> what it holds */
  variables: Readonly<Record<string, string>>;
  body: string;
  file: string;
}

const PLACEHOLDER = /\{\{\s*(?<name>[^}]*?)\s*\}\}/g;
const NAME = /^[a-z][a-z0-9_]*$/;

function bad(file: string, why: string): never {
  throw new VrError('CONFIG_INVALID', `${file}: ${why}`);
}

/**
 * Parses a template. The front matter is a small fixed subset of YAML (`kind:`, `description:`,
 * `variables:` with one indented `name: meaning` per line), parsed here rather than with a YAML
 * library: the format is ours, and a stray YAML feature would only hide a typo.
 */
export function parseTemplate(text: string, file = '(template)'): Template {
  const m = /^---\n(?<head>[\s\S]*?)\n---\n(?<body>[\s\S]*)$/.exec(text.replace(/\r\n/g, '\n'));
  if (!m?.groups) bad(file, 'no front matter (--- ... ---) at the top');
  let kind: string | null = null;
  let description = '';
  const variables: Record<string, string> = {};
  let inVars = false;
  for (const line of m.groups.head!.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const v = /^[ ]{2,}(?<name>[^:\s]+):[ ]*(?<meaning>.*)$/.exec(line);
    if (inVars && v?.groups) {
      const name = v.groups.name!;
      if (!NAME.test(name)) bad(file, `variable name '${name}' is not lower_snake_case`);
      if (name in variables) bad(file, `variable '${name}' listed twice`);
      variables[name] = v.groups.meaning!.trim();
      continue;
    }
    const kv = /^(?<key>[a-z]+):[ ]*(?<value>.*)$/.exec(line);
    if (!kv?.groups) bad(file, `cannot read front matter line: ${line}`);
    inVars = kv.groups.key === 'variables';
    if (kv.groups.key === 'kind') kind = kv.groups.value!.trim();
    else if (kv.groups.key === 'description') description = kv.groups.value!.trim();
    else if (!inVars) bad(file, `unknown front matter key '${kv.groups.key}'`);
  }
  if (!kind || !(REPLY_KINDS as readonly string[]).includes(kind)) bad(file, `kind must be one of ${REPLY_KINDS.join(', ')}`);
  const body = m.groups.body!;
  const used = new Set<string>();
  for (const p of body.matchAll(PLACEHOLDER)) {
    const name = p.groups!.name!;
    if (!(name in variables)) bad(file, `{{${name}}} is used but not listed in the front matter`);
    used.add(name);
  }
  for (const name of Object.keys(variables)) if (!used.has(name)) bad(file, `variable '${name}' is listed but never used`);
  return { kind: kind as ReplyKind, description, variables, body, file };
}

const cache = new Map<string, Template>();

/** prompts/<kind>.md, parsed once per process. */
export function loadTemplate(kind: ReplyKind, dir = PROMPTS_DIR): Template {
  const file = join(dir, `${kind}.md`);
  let t = cache.get(file);
  if (!t) {
    t = parseTemplate(readFileSync(file, 'utf8'), file);
    if (t.kind !== kind) bad(file, `says kind '${t.kind}', expected '${kind}'`);
    cache.set(file, t);
  }
  return t;
}

/** A template line that is not running prose: a block variable on its own line, a list item, a quote, the signature. */
const BLOCKISH = /^(?:\s*\{\{[^}]*\}\}\s*|[-*>] .*|-- |\s.*)$/;

/**
 * Joins the lines of each prose paragraph of the template into one, so the final wrap flows them
 * around the values put in (a long series title would otherwise leave a ragged short line).
 */
function unwrapProse(body: string): string {
  return body
    .split(/\n{2,}/)
    .map((para) => {
      const lines = para.split('\n');
      return lines.some((l) => BLOCKISH.test(l)) ? para : lines.join(' ');
    })
    .join('\n\n');
}

/**
 * Fills a template. Throws on a variable the template lists that is not given, and on one given that
 * it does not list: a renamed variable must fail loudly, not print "{{applied}}" to a mailing list.
 * The result is finished: prose wrapped at 72 columns, verbatim blocks (quotes, traces) as they are.
 */
export function render(t: Template, values: Readonly<Record<string, string>>): string {
  const missing = Object.keys(t.variables).filter((k) => !(k in values));
  const unknown = Object.keys(values).filter((k) => !(k in t.variables));
  if (missing.length) bad(t.file, `missing variable(s): ${missing.join(', ')}`);
  if (unknown.length) bad(t.file, `unknown variable(s): ${unknown.join(', ')}`);
  // One pass over the template: a value that itself contains "{{x}}" is text, never expanded again.
  const filled = unwrapProse(t.body).replace(PLACEHOLDER, (_all, name: string) => values[name]!);
  return finishBody(filled);
}
