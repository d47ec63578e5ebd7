/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of s3rver, for the fault suite. Requests pass through
 * unchanged (same Host header, so SigV4 signatures still verify) unless a rule matches; a rule applies
 * `times` times (Infinity: always):
 *   - `503`: answers 503 SlowDown (an S3 error the SDK retries)
 *   - `reset`: destroys the connection without answering
 *   - `stall`: reads the request and never answers (the client's timeout must fire)
 *   - `truncate`: forwards, then cuts the response body after half of it
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault = '503' | 'reset' | 'stall' | 'truncate';
export interface Rule { fault: Fault; times: number; method?: string; path?: RegExp }
export interface FaultProxy {
  port: number;
  /** replaces the rules */
  plan(rules: Rule[]): void;
  /** faults injected so far, by kind */
  injected: Record<Fault, number>;
  requests: number;
  close(): Promise<void>;
}

export async function startFaultProxy(upstreamPort: number): Promise<FaultProxy> {
  let rules: Rule[] = [];
  const injected: Record<Fault, number> = { '503': 0, reset: 0, stall: 0, truncate: 0 };
  const sockets = new Set<Socket>();
  const state = { requests: 0 };

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
    const rule = rules.find((r) => r.times > 0 && (!r.method || r.method === req.method) && (!r.path || r.path.test(req.url ?? '')));
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
    }
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    plan: (r) => { rules = r.map((x) => ({ ...x })); },
    injected,
    get requests() { return state.requests; },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
