/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of s3rver, for the fault suite. Requests pass through
 * unchanged (same Host header, so SigV4 signatures still verify) unless a rule matches; a rule applies
 * `times` times (Infinity: always):
 *   - `503`: answers 503 SlowDown (an S3 error the SDK retries)
 *   - `reset`: destroys the connection without answering
 *   - `stall`: reads the request and never answers (the client's timeout must fire)
 *   - `truncate`: forwards, then cuts the response body after half of it
 *   - `deleteError`: a DeleteObjects (POST ?delete) naming a key that matches `key`: those keys are taken out
 *     of the request before it is forwarded (so they really stay) and reported back as per-key `Errors`
 *     with `code` (default AccessDenied) in the 200 answer, as S3 does; counts once per request
 * Every request is logged (method, key): a test counts how often a restore downloads each part.
 * It can also stand in for the multipart-upload part of S3 that s3rver lacks: `fakeUploads(list, pageSize)`
 * makes it answer ListMultipartUploads itself (prefix, KeyMarker / UploadIdMarker, MaxUploads, at most
 * `pageSize` per page) and AbortMultipartUpload of those uploads.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault = '503' | 'reset' | 'stall' | 'truncate' | 'deleteError';
export interface Rule { fault: Fault; times: number; method?: string; path?: RegExp; key?: RegExp; code?: string }
export interface FakeUpload { key: string; uploadId: string; initiated: Date }
export interface FaultProxy {
  port: number;
  /** replaces the rules */
  plan(rules: Rule[]): void;
  /** answers ListMultipartUploads / AbortMultipartUpload from this list (keys with the bucket's prefix); null: off */
  fakeUploads(list: FakeUpload[] | null, pageSize?: number): void;
  /** the fake uploads not aborted yet */
  uploadsLeft(): FakeUpload[];
  /** ListMultipartUploads requests answered by the fake */
  uploadListings: number;
  /** faults injected so far, by kind */
  injected: Record<Fault, number>;
  requests: number;
  /** every request seen, in order: method and object key (the path after the bucket) */
  log: { method: string; key: string }[];
  close(): Promise<void>;
}

export async function startFaultProxy(upstreamPort: number): Promise<FaultProxy> {
  let rules: Rule[] = [];
  const injected: Record<Fault, number> = { '503': 0, reset: 0, stall: 0, truncate: 0, deleteError: 0 };
  const sockets = new Set<Socket>();
  const state = { requests: 0, uploadListings: 0 };
  const log: { method: string; key: string }[] = [];
  let uploads: FakeUpload[] | null = null;
  let uploadsPage = 1000;

  const xml = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const unxml = (v: string) => v.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  const answer = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const listUploads = (url: URL, res: ServerResponse) => {
    state.uploadListings++;
    const q = url.searchParams;
    const prefix = q.get('prefix') ?? '';
    const keyMarker = q.get('key-marker') ?? '';
    const idMarker = q.get('upload-id-marker') ?? '';
    const max = Math.min(Number(q.get('max-uploads') ?? 1000), uploadsPage);
    const all = uploads!.filter((u) => u.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.uploadId < b.uploadId ? -1 : a.uploadId > b.uploadId ? 1 : 0))
      .filter((u) => !keyMarker || u.key > keyMarker || (idMarker !== '' && u.key === keyMarker && u.uploadId > idMarker));
    const page = all.slice(0, max);
    const truncated = all.length > page.length;
    const last = page.at(-1);
    answer(res, 200, '<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
      + `<Bucket>${xml(url.pathname.split('/')[1] ?? '')}</Bucket><KeyMarker>${xml(keyMarker)}</KeyMarker><UploadIdMarker>${xml(idMarker)}</UploadIdMarker>`
      + (truncated && last ? `<NextKeyMarker>${xml(last.key)}</NextKeyMarker><NextUploadIdMarker>${xml(last.uploadId)}</NextUploadIdMarker>` : '')
      + `<Prefix>${xml(prefix)}</Prefix><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>`
      + page.map((u) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${xml(u.uploadId)}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`).join('')
      + '</ListMultipartUploadsResult>');
  };

  /** DeleteObjects with per-key errors for the keys the rules' `key` match; false when none matched */
  const deleteWithErrors = (req: IncomingMessage, res: ServerResponse, body: Buffer, dels: Rule[]): boolean => {
    const text = body.toString('utf8');
    const objects = [...text.matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map((m) => ({ all: m[0], key: unxml(/<Key>([\s\S]*?)<\/Key>/.exec(m[1]!)?.[1] ?? '') }));
    const failed: { all: string; key: string; code: string }[] = [];
    for (const rule of dels) {
      const hit = objects.filter((o) => rule.key!.test(o.key) && !failed.some((f) => f.key === o.key));
      if (!hit.length) continue;
      rule.times--;
      injected.deleteError++;
      failed.push(...hit.map((o) => ({ ...o, code: rule.code ?? 'AccessDenied' })));
    }
    if (!failed.length) return false;
    const errors = failed.map((o) => `<Error><Key>${xml(o.key)}</Key><Code>${o.code}</Code><Message>${o.code === 'AccessDenied' ? 'Access Denied' : 'We encountered an internal error'} (injected by the fault proxy)</Message></Error>`).join('');
    const close = (upstream: string) => {
      const out = upstream.includes('</DeleteResult>') ? upstream.replace('</DeleteResult>', `${errors}</DeleteResult>`)
        : `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${errors}</DeleteResult>`;
      answer(res, 200, out);
    };
    if (failed.length === objects.length) { close(''); return true; }
    let rest = text;
    for (const o of failed) rest = rest.replace(o.all, '');
    const headers = { ...req.headers, 'content-length': String(Buffer.byteLength(rest)) };
    delete headers.expect;
    const up = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers }, (ur) => {
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        const got = Buffer.concat(chunks).toString('utf8');
        if ((ur.statusCode ?? 500) !== 200) { answer(res, ur.statusCode ?? 502, got); return; }
        close(got);
      });
    });
    up.on('error', () => res.socket?.destroy());
    up.end(rest);
    return true;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, truncate: boolean) => {
    const up = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      const len = Number(ur.headers['content-length'] ?? -1);
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!truncate || len < 2) { ur.pipe(res); return; }
      let sent = 0;
      ur.on('data', (c: Buffer) => {
        const room = Math.floor(len / 2) - sent;
        if (room <= 0) return;
        const piece = c.subarray(0, room);
        sent += piece.length;
        res.write(piece);
        if (sent >= Math.floor(len / 2)) { ur.destroy(); res.socket?.destroy(); }
      });
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    state.requests++;
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    log.push({ method: req.method ?? '', key: decodeURIComponent(url.pathname.split('/').slice(2).join('/')) });
    if (uploads && req.method === 'GET' && url.searchParams.has('uploads')) { req.resume(); req.on('end', () => listUploads(url, res)); return; }
    if (uploads && req.method === 'DELETE' && url.searchParams.has('uploadId')) {
      const key = decodeURIComponent(url.pathname.split('/').slice(2).join('/'));
      const i = uploads.findIndex((u) => u.key === key && u.uploadId === url.searchParams.get('uploadId'));
      if (i >= 0) {
        uploads.splice(i, 1);
        req.resume();
        req.on('end', () => { res.writeHead(204).end(); });
        return;
      }
    }
    const del = req.method === 'POST' && url.searchParams.has('delete') ? rules.filter((r) => r.fault === 'deleteError' && r.times > 0 && r.key) : [];
    if (del.length) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (deleteWithErrors(req, res, body, del)) return;
        const up = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (ur) => { res.writeHead(ur.statusCode ?? 502, ur.headers); ur.pipe(res); });
        up.on('error', () => res.socket?.destroy());
        up.end(body);
      });
      return;
    }
    const rule = rules.find((r) => r.fault !== 'deleteError' && r.times > 0 && (!r.method || r.method === req.method) && (!r.path || r.path.test(req.url ?? '')));
    if (!rule) return forward(req, res, false);
    rule.times--;
    injected[rule.fault]++;
    switch (rule.fault) {
      case '503':
        req.resume();
        req.on('end', () => {
          res.writeHead(503, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected by the fault proxy</Message></Error>');
        });
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'stall':
        req.resume();
        return;
      case 'truncate':
        return forward(req, res, true);
      case 'deleteError':
        return forward(req, res, false); // not reached: handled above
    }
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    plan: (r) => { rules = r.map((x) => ({ ...x })); },
    fakeUploads: (list, pageSize = 1000) => { uploads = list ? list.map((u) => ({ ...u })) : null; uploadsPage = pageSize; },
    uploadsLeft: () => (uploads ?? []).map((u) => ({ ...u })),
    injected,
    get requests() { return state.requests; },
    log,
    get uploadListings() { return state.uploadListings; },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
