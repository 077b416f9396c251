/** A one-line progress display on a terminal; silent otherwise (logs and pipes stay clean). */
export class Progress {
  private last = 0;
  private readonly on: boolean;
  constructor(private readonly label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.on = Boolean(stream.isTTY);
    this.stream = stream;
  }
  private readonly stream: NodeJS.WriteStream;

  tick(done: number, total?: number, note = ''): void {
    if (!this.on) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    let bar = '';
    if (total && total > 0) {
      const w = 30;
      const f = Math.min(w, Math.round((done / total) * w));
      bar = `[${'#'.repeat(f)}${'.'.repeat(w - f)}] ${Math.round((done / total) * 100)}% `;
    }
    this.stream.write(`\r${this.label} ${bar}${done}${total ? `/${total}` : ''} ${note}`.slice(0, 200) + '\x1b[K');
  }

  done(): void {
    if (this.on) this.stream.write('\r\x1b[K');
  }
}
