import { defineScenario } from '../model.js';

/**
 * An object used without a reference or lock while another path frees it: a migration data FD
 * read racing with close_device() that frees the migration buffer (seed 001's lifetime question).
 */
export const freeWhileInUse = defineScenario({
  id: 'free-while-in-use',
  expect: 'use-after-free',
  purpose: 'the reader loads the buffer pointer without the state mutex; close_device frees the buffer under it',
  objects: ['buf'],
  init: { 'migf->buf': '&buf' },
  names: ['mig_read', 'close_device'],
  threads: [
    (t) => [
      t.readOnce('migf->buf', 'p', 'main.c:110'),
      t.branch('p == NULL', 'eof'),
      t.use('p', 'read', 'main.c:114'),
      t.ret(0),
      t.label('eof'),
      t.ret(0, 'main.c:111'),
    ],
    (t) => [
      t.lock('mvdev->state_mutex', 'main.c:200'),
      t.read('migf->buf', 'b', 'main.c:201'),
      t.writeOnce('migf->buf', 'NULL', 'main.c:202'),
      t.free('b', 'main.c:203'),
      t.unlock('mvdev->state_mutex', 'main.c:204'),
      t.ret(0),
    ],
  ],
  bounds: { maxStates: 10_000 },
});
