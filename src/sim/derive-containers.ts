/**
 * Calls on containers a scenario abstracts to one slot (TreeSource.containers): lookups read the
 * element pointer (checked like a field loaded under its lock), unlinks write NULL, destroys
 * unlink and free, accesses dereference the element they are handed.
 */
import type { CallEvent } from '../cmodel/index.js';
import type { Deriver, Frame } from './derive-fn.js';
import { builder as t } from './model.js';

/** A call on an abstracted container (TreeSource.containers); false when `ev` is none. */
export function containerCall(d: Deriver, ev: CallEvent, f: Frame, reg: string | null): boolean {
  const c = d.opts.containers?.find((x) => [...x.lookup, ...x.unlink, ...(x.destroy ?? []), ...(x.access ?? [])].includes(ev.callee));
  if (!c) return false;
  const at = d.at(f, ev.line);
  if (c.access?.includes(ev.callee)) {
    const v = d.value(f, (ev.args[0] ?? '').trim(), ev.line);
    if (d.loaded.has(v)) {
      const skip = d.fresh('Ln');
      d.emit(t.branch(`${v} == 0`, skip));
      d.emit(t.note(t.use(v, 'read', at), `${ev.callee}(${v})`));
      d.emit(t.label(skip));
    }
    if (reg) d.emit(t.set(reg, '?', at));
    return true;
  }
  const root = f.objects.get((ev.args[0] ?? '').trim().replace(/^&/, ''));
  const cell = root ? `${root}:${c.cell}` : c.cell;
  if (c.unlink.includes(ev.callee)) {
    d.emit(t.note(t.write(cell, 'NULL', at), `${ev.callee}() unlinks from ${cell}`));
    return true;
  }
  if (c.destroy?.includes(ev.callee)) {
    const r = d.fresh(`${f.prefix}de`);
    d.emit(t.note(t.read(cell, r, at), `${r} = ${cell}`));
    d.emit(t.note(t.write(cell, 'NULL', at), `${ev.callee}() unlinks from ${cell}`));
    d.emit(t.note(t.free(r, at), `${ev.callee}() frees ${r}`));
    return true;
  }
  if (d.opts.shared && !d.opts.shared.has(cell)) {
    if (reg) d.emit(t.set(reg, '?', at));
    return true;
  }
  const r = reg ?? d.fresh(`${f.prefix}lu`);
  d.emit(t.note(t.read(cell, r, at), `${r} = ${ev.callee}() /* ${cell} */`));
  d.loaded.add(r);
  return true;
}
