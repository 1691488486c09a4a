// Preloaded into a CLI process (`node --import <this file>`): counts its HTTP requests and writes
// them, one `METHOD host:port path?query` line each, to TIDEMARK_TEST_REQUESTS_FILE at exit.
// Plain JS: Node loads it before any TypeScript tooling.
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { syncBuiltinESMExports } from 'node:module';

const file = process.env.TIDEMARK_TEST_REQUESTS_FILE;
const lines = [];
const original = http.request;
http.request = function request(...args) {
  const req = original.apply(this, args);
  lines.push(`${req.method} ${req.host}:${req.socket?.remotePort ?? args[0]?.port ?? ''} ${req.path}`);
  return req;
};
// ESM importers of node:http see the patched function too.
syncBuiltinESMExports();
process.on('exit', () => {
  if (file) appendFileSync(file, lines.map((l) => `${l}\n`).join(''));
});
