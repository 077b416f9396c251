/**
 * parseC reparses a path it parsed recently from the earlier tree (tree-sitter's incremental
 * parse, src/cmodel/parse.ts): the tree must be the one a fresh parse gives, positions included,
 * also when the edit adds non-ASCII text (indices and columns are UTF-16 units).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeParsed, editsBetween, loadParser, parseC, type ParsedFile } from '../../src/cmodel/parse.js';
import { kernelTree } from '../helpers/kernel-tree.js';

let tree: string;
beforeAll(async () => {
  tree = await kernelTree();
  await loadParser();
}, 30 * 60_000);

/** The tree as text, and every function definition's span and start/end points. */
function shape(f: ParsedFile): { sexp: string; fns: string[] } {
  const root = f.tree!.rootNode;
  const fns = root.descendantsOfType('function_definition').map((n) => `${n!.startIndex}-${n!.endIndex} ${n!.startPosition.row}:${n!.startPosition.column}-${n!.endPosition.row}:${n!.endPosition.column}`);
  return { sexp: root.toString(), fns };
}

describe('reparsing a file from its previous tree', () => {
  it.each([
    ['a comment with non-ASCII text above a function', (s: string) => s.replace('int vfio_pci_core_enable(', '/* ünïcödé → 頁 */\nint vfio_pci_core_enable(')],
    ['a renamed identifier in many places', (s: string) => s.replaceAll('pci_saved_state', 'pci_saved_state_x')],
    ['lines added at the top and inside a function', (s: string) => `// é\n${s.replace('\tvfio_pci_core_disable(vdev);', '\tint extra = 1;\n\tvfio_pci_core_disable(vdev);')}`],
    ['hunks at the top and the bottom (two edits)', (s: string) => `/* top */\n${s}\n/* bottom: ü */\nstatic int vfio_extra(void) { return 0; }\n`],
    ['a function deleted and one added far below it', (s: string) => {
      const i = s.indexOf('static void vfio_pci_probe_mmaps');
      const j = s.indexOf('\n}\n', i) + 3;
      return `${s.slice(0, i)}${s.slice(j)}\nstatic void vfio_moved(void)\n{\n\tint x = 1;\n}\n`;
    }],
    ['a block moved up (anchors out of order)', (s: string) => {
      const i = s.indexOf('int vfio_pci_core_enable(');
      const j = s.indexOf('\n}\n', i) + 3;
      const k = s.indexOf('#include "vfio_pci_priv.h"');
      return `${s.slice(0, k)}${s.slice(i, j)}\n${s.slice(k, i)}${s.slice(j)}`;
    }],
    ['lines removed in several functions', (s: string) => s.replace(/\n\tlockdep_assert_held\([^\n]*\);/g, '')],
  ])('gives the tree of a fresh parse after %s', (_, edit) => {
    const path = 'drivers/vfio/pci/vfio_pci_core.c';
    const src = readFileSync(join(tree, path), 'utf8');
    const changed = edit(src);
    expect(changed).not.toBe(src);
    disposeParsed(parseC(src, path));
    const again = parseC(changed, path); // from the previous tree
    const fresh = parseC(changed, `${path}.fresh`); // no previous tree under this path
    try {
      expect(shape(again)).toEqual(shape(fresh));
    } finally {
      disposeParsed(again);
      disposeParsed(fresh);
    }
  });
});

describe('editsBetween', () => {
  it('gives one edit per separate change and none for equal texts', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `line number ${i};`);
    const a = `${lines.join('\n')}\n`;
    const b = `${['first', ...lines.slice(0, 100), 'middle ü', ...lines.slice(100), 'last'].join('\n')}\n`;
    expect(editsBetween(a, a)).toEqual([]);
    const edits = editsBetween(a, b);
    expect(edits).toHaveLength(3);
    expect(edits.map((e) => e.startPosition.row)).toEqual([0, 100, 200]);
    expect(edits[1]!.newEndPosition).toEqual({ row: 101, column: 0 });
  });
});
