import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { registerSecret, scrub, scrubValue, isSecretName } from '../../src/core/redact.ts';
import { createLogger } from '../../src/core/log.ts';

test('scrub masks every registered secret, longest first, and URL-encoded forms', () => {
  registerSecret('pa55word');
  registerSecret('pa55word-and-more');
  registerSecret('p@ss/w:rd');
  registerSecret('ab'); // too short to mask safely
  assert.equal(scrub('x pa55word-and-more y pa55word z'), 'x [REDACTED] y [REDACTED] z');
  assert.equal(scrub('redis://:p%40ss%2Fw%3Ard@host'), 'redis://:[REDACTED]@host');
  assert.equal(scrub('about'), 'about');
  assert.deepEqual(scrubValue({ a: ['pa55word'], b: { c: 'pa55word!' }, n: 1 }), { a: ['[REDACTED]'], b: { c: '[REDACTED]!' }, n: 1 });
});

test('secret variable names are recognised', () => {
  for (const n of ['MARIADB_ROOT_PASSWORD', 'POSTGRES_PASSWORD', 'DR_S3_SECRET_ACCESS_KEY', 'DR_TELEGRAM_BOT_TOKEN', 'SECRET_KEY_BASE']) assert.ok(isSecretName(n), n);
  for (const n of ['POSTGRES_USER', 'MARIADB_DATABASE', 'MARIADB_ROOT_PASSWORD_FILE', 'TZ']) assert.ok(!isSecretName(n), n);
});

test('the logger removes secrets by key and by value', () => {
  registerSecret('hunter2-secret-value');
  let out = '';
  const sink = new Writable({ write(c, _e, cb) { out += c; cb(); } });
  const log = createLogger('info', sink);
  log.info({ password: 'by-key-secret', container: 'v2_glpi_db', detail: 'said hunter2-secret-value' }, 'connecting with hunter2-secret-value');
  log.flush();
  assert.ok(!out.includes('by-key-secret'));
  assert.ok(!out.includes('hunter2-secret-value'));
  assert.match(out, /v2_glpi_db/);
  assert.match(out, /connecting with \[REDACTED\]/);
});
