import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/cmodel/build.js';
import type { LockEvent } from '../../src/cmodel/events.js';
import { classOfPath, fieldClassOf } from '../../src/cmodel/locks.js';
import { findFunction, lockClass, type TreeModel } from '../../src/cmodel/model.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/c/${name}`, import.meta.url), 'utf8');

/** A tree held in memory: the fixtures placed under drivers/fake/. */
function memoryTree(names: string[]): { readFile(p: string): string | null; list(d: string): string[] } {
  // Fixtures are all .c files; the header one is served under its real name.
  const files = new Map(names.map((n) => [`drivers/fake/${n.replace(/-h\.c$/, '.h')}`, fixture(n)]));
  return {
    readFile: (p) => files.get(p) ?? null,
    list: (d) => [...files.keys()].filter((p) => p.startsWith(`${d}/`)).map((p) => p.slice(d.length + 1)),
  };
}

function marker(name: string, src: string): number {
  const i = src.split('\n').findIndex((l) => new RegExp(String.raw`@${name}\b`).test(l));
  if (i < 0) throw new Error(`no marker @${name}`);
  return i + 1;
}

let model: TreeModel;
const srcA = fixture('cmodel-locks-a.c');
const srcB = fixture('cmodel-locks-b.c');

beforeAll(async () => {
  model = await buildModel(memoryTree(['cmodel-locks-h.c', 'cmodel-locks-a.c', 'cmodel-locks-b.c']), ['drivers/fake/cmodel-locks-a.c', 'drivers/fake/cmodel-locks-b.c']);
});

/** The class of the acquire at a marker line of function `fnName`. */
function classAt(fnName: string, src: string, name: string): string {
  const fn = findFunction(model, fnName)!;
  const line = marker(name, src);
  const ev = fn.events.find((e): e is LockEvent => e.kind === 'lock' && e.op === 'acquire' && e.line === line);
  if (!ev) throw new Error(`no acquire at @${name}`);
  return lockClass(model, fn, ev);
}

describe('lock classes', () => {
  it('pulls the included header in as context', () => {
    expect(model.touched).toEqual(['drivers/fake/cmodel-locks-a.c', 'drivers/fake/cmodel-locks-b.c']);
    expect(model.context).toEqual(['drivers/fake/cmodel-locks.h']);
  });

  it('names a member lock by the struct that contains it, through pointer chains', () => {
    expect(classAt('a_nested', srcA, 'a_parent')).toBe('gadget_dev.lock');
    expect(classAt('a_nested', srcA, 'a_own')).toBe('gadget.lock');
    expect(classAt('a_derived', srcA, 'a_kvm')).toBe('kvm.lock');
  });

  it('matches the same lock across functions and files, whatever the variable is called', () => {
    const a = classAt('a_nested', srcA, 'a_parent');
    expect(classAt('a_global', srcA, 'a_global_ptr')).toBe(a);
    expect(classAt('b_dev', srcB, 'b_dev')).toBe(a);
    expect(classAt('b_global', srcB, 'b_kvm')).toBe(classAt('a_derived', srcA, 'a_kvm'));
  });

  it('names a global lock object by its name, in both files', () => {
    expect(classAt('a_global', srcA, 'a_global')).toBe('gadget_global_mutex');
    expect(classAt('b_global', srcB, 'b_global')).toBe('gadget_global_mutex');
  });

  it('resolves locals from container_of, casts, typedefs and function return types', () => {
    expect(classAt('a_derived', srcA, 'a_local')).toBe('gadget.lock');
    expect(classAt('a_derived', srcA, 'a_container')).toBe('gadget.lock');
    expect(classAt('a_derived', srcA, 'a_cast')).toBe('gadget_dev.slock');
    expect(classAt('a_derived', srcA, 'a_typedef')).toBe('gadget.lock');
    expect(classAt('a_derived', srcA, 'a_return_type')).toBe('gadget_dev.lock');
  });

  it('keeps an unknown base as ?.<member>', () => {
    expect(classAt('a_derived', srcA, 'a_unknown')).toBe('?.lock');
  });

  it('gives field classes for loads and stores, null when the base type is unknown', () => {
    const fn = findFunction(model, 'a_nested')!;
    expect(fieldClassOf({ root: { kind: 'var', name: 'g' }, steps: [{ op: '->', member: 'state' }] }, fn, model.env)).toBe('gadget.state');
    expect(fieldClassOf({ root: { kind: 'var', name: 'nope' }, steps: [{ op: '->', member: 'state' }] }, fn, model.env)).toBeNull();
  });

  it('reports a parameter-relative lock so callers can substitute their argument', () => {
    const fn = { ...findFunction(model, 'a_nested')!, params: [{ name: 'm', type: 'struct mutex *', line: 1 }] };
    const c = classOfPath({ root: { kind: 'var', name: 'm' }, steps: [{ op: '*' }] }, fn, model.env);
    expect(c).toEqual({ id: '*param:m', known: false, param: { index: 0, steps: [{ op: '*' }] } });
  });
});
