/** Builds small RFC 5322 messages for tests: patches, covers, replies, with or without threading headers. */
export interface MailSpec {
  id?: string | null;
  from?: string;
  subject: string;
  date?: string;
  inReplyTo?: string;
  references?: string[];
  body?: string;
  headers?: Record<string, string>;
}

let clock = Date.parse('2024-03-01T10:00:00Z');

export function mail(spec: MailSpec): Buffer {
  const h: string[] = [];
  h.push(`From: ${spec.from ?? 'Dev One <dev1@example.org>'}`);
  h.push(`Subject: ${spec.subject}`);
  h.push(`Date: ${spec.date ?? new Date((clock += 60_000)).toUTCString()}`);
  if (spec.id !== null) h.push(`Message-ID: <${spec.id ?? `${Math.random().toString(36).slice(2)}@example.org`}>`);
  if (spec.inReplyTo) h.push(`In-Reply-To: <${spec.inReplyTo}>`);
  if (spec.references?.length) h.push(`References: ${spec.references.map((r) => `<${r}>`).join(' ')}`);
  for (const [k, v] of Object.entries(spec.headers ?? {})) h.push(`${k}: ${v}`);
  h.push('MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8');
  return Buffer.from(`${h.join('\n')}\n\n${spec.body ?? 'Hello.\n'}`);
}

/** A format-patch style body touching `path`. */
export function patchBody(path = 'drivers/vfio/vfio_main.c', msg = 'Do the thing.', trailers: string[] = []): string {
  return `${msg}\n\n${['Signed-off-by: Dev One <dev1@example.org>', ...trailers].join('\n')}\n---
 ${path} | 1 +
 1 file changed, 1 insertion(+)

diff --git a/${path} b/${path}
index 1111111..2222222 100644
--- a/${path}
+++ b/${path}
@@ -1,3 +1,4 @@
 a
+b
 c
 d
-- 
2.43.0
`;
}
