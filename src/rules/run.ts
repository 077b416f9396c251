import type { Rule, RuleFinding, Report } from './types.js';
import type { PatchView } from './context.js';
import { reasonOf } from '../errors.js';

function fill(template: string, data: Record<string, string | number> = {}): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, k: string) => (k in data ? String(data[k]) : `{{${k}}}`));
}

/**
 * Runs every rule over every patch view. A rule that throws does not stop the
 * others: its failure is returned as an info finding of its own, so it is seen.
 */
export async function runRules(rules: readonly Rule[], views: readonly PatchView[]): Promise<RuleFinding[]> {
  const out: RuleFinding[] = [];
  const seen = new Set<string>();
  for (const view of views) {
    for (const rule of rules) {
      const report = (r: Report & { messageId: string }): void => {
        const template = rule.meta.messages[r.messageId];
        if (!template) throw new Error(`rule ${rule.id} reported unknown messageId ${r.messageId}`);
        const message = fill(template, r.data);
        const key = `${rule.id}\n${view.patch.msgid}\n${r.file}\n${r.line}\n${message}`;
        if (seen.has(key)) return;
        seen.add(key);
        out.push({
          rule: rule.id,
          severity: rule.meta.severity,
          category: rule.meta.category,
          confidence: rule.meta.confidence,
          patch: view.patch.msgid,
          file: r.file,
          line: r.line,
          function: r.function ?? null,
          message,
          evidence: r.evidence ?? [],
          suggestion: r.suggestion ?? null,
          ...(r.trace ? { trace: r.trace } : {}),
        });
      };
      try {
        await rule.check({ ...view, report });
      } catch (err) {
        out.push({
          rule: rule.id, severity: 'info', category: 'robustness', confidence: 'high', patch: view.patch.msgid,
          file: '', line: 0, function: null, message: `rule failed: ${reasonOf(err)}`, evidence: [], suggestion: null,
        });
      }
    }
  }
  return out;
}
