/**
 * Named points between "decided" and "sent" where the crash-safety tests stop the reporter. With
 * VFIO_REVIEW_PAUSE_AT=<point>[,<point>...] the process prints `vfio-review: paused at <point>` on
 * stderr and waits forever, so a test can SIGKILL it at exactly that state; a real kill -9, not a
 * simulated one. Unset (always, outside tests) it costs one environment lookup.
 */
export type CrashPoint = 'after-decide' | 'before-deliver' | 'after-deliver';

export async function crashPoint(point: CrashPoint, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const want = env.VFIO_REVIEW_PAUSE_AT;
  if (!want || !want.split(',').includes(point)) return;
  process.stderr.write(`vfio-review: paused at ${point}\n`);
  await new Promise<never>(() => {
    setInterval(() => undefined, 1 << 30); // keeps the event loop alive until the test kills us
  });
}
