import { describe, expect, it } from 'vitest';
import { compileExpr, ERRNO, OBJ_BASE, showValue, UNKNOWN, type ExprScope } from '../../src/sim/expr.js';

const scope = (): ExprScope => ({ regs: new Map([['r0', 0], ['ret', 1]]), objects: new Map([['dma', 0]]), consts: new Map() });

describe('expressions', () => {
  const regs = Int32Array.from([3, -16]);
  const ev = (e: string | number, sc = scope()): number => compileExpr(e, sc)(regs, 0);

  it('arithmetic, comparisons, logic with C precedence', () => {
    expect(ev('r0 + 1 == 4')).toBe(1);
    expect(ev('r0 - 1 < 2 || r0 == 3 && ret < 0')).toBe(1);
    expect(ev('!(r0 >= 3)')).toBe(0);
    expect(ev('-r0')).toBe(-3);
    expect(ev(0x10)).toBe(16);
  });

  it('errno names, NULL, object pointers, interned constants', () => {
    expect(ev('ret == -EBUSY')).toBe(1);
    expect(ERRNO.EBUSY).toBe(16);
    expect(ev('NULL')).toBe(0);
    expect(ev('&dma')).toBe(OBJ_BASE);
    const sc = scope();
    const a = ev('VFIO_CCW_STATE_STANDBY', sc);
    expect(ev('VFIO_CCW_STATE_STANDBY', sc)).toBe(a);
    expect(ev('VFIO_CCW_STATE_NOT_OPER', sc)).not.toBe(a);
    expect(showValue(a, ['dma'], sc.consts)).toBe('VFIO_CCW_STATE_STANDBY');
    expect(showValue(-16, [], sc.consts)).toBe('-EBUSY');
  });

  it('unknown propagates, except where && / || decide on the known side', () => {
    expect(ev('?')).toBe(UNKNOWN);
    expect(ev('? + 1')).toBe(UNKNOWN);
    expect(ev('? && 0')).toBe(0);
    expect(ev('? || r0')).toBe(1);
    expect(ev('!?')).toBe(UNKNOWN);
  });

  it('rejects malformed text', () => {
    expect(() => ev('r0 +')).toThrow();
    expect(() => ev('(r0')).toThrow();
    expect(() => ev('&nosuch')).toThrow(/unknown object/);
  });
});
