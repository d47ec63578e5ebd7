import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable, type Transform } from 'node:stream';
import {
  createCipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  randomFillSync,
} from 'node:crypto';
import {
  AgeError,
  createDecryptStream,
  createEncryptStream,
  generateIdentity,
  parseIdentities,
  parseRecipients,
  recipientOf,
} from '../../src/codec/age/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'age-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
function tmpFile(content: string | Buffer): string {
  const path = join(dir, `f${++fileNo}`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** Runs a CLI with `input` on stdin; its stdout, or throws with its stderr. */
function run(cmd: string, args: string[], input?: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input: input ?? Buffer.alloc(0), maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** Pushes `input` through `t` in `feed`-byte pieces; resolves to the output. */
async function through(t: Transform, input: Buffer, feed = 64 * 1024): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    function* () {
      for (let i = 0; i < input.length; i += feed) yield input.subarray(i, i + feed);
    },
    t,
    async function (source: AsyncIterable<Buffer>) {
      for await (const c of source) out.push(c);
    },
  );
  return Buffer.concat(out);
}
const encrypt = (data: Buffer, recipients: string[], feed?: number) => through(createEncryptStream(recipients), data, feed);
const decrypt = (data: Buffer, identities: string[], feed?: number) => through(createDecryptStream(identities), data, feed);

/** Decrypting must fail with an AgeError matching `re`; returns what was emitted before the failure. */
async function rejectsDecrypt(data: Buffer, identities: string[], re: RegExp, feed?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  let caught: unknown;
  try {
    await pipeline(
      function* () {
        const step = feed ?? 64 * 1024;
        for (let i = 0; i < data.length; i += step) yield data.subarray(i, i + step);
      },
      createDecryptStream(identities),
      async function (source: AsyncIterable<Buffer>) {
        for await (const c of source) out.push(c);
      },
    );
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof AgeError, `expected an AgeError matching ${re}, got ${caught === undefined ? 'success' : String(caught)}`);
  assert.match(caught.message, re);
  return Buffer.concat(out);
}

// Keys: one from the stock age-keygen, one of ours written in the same file format.
const keyFile1 = join(dir, 'key1.txt');
run('age-keygen', ['-o', keyFile1]);
const id1 = parseIdentities(readFileSync(keyFile1, 'utf8'), keyFile1)[0]!;
const rcpt1 = run('age-keygen', ['-y', keyFile1]).toString().trim();
const ours = generateIdentity();
const id2 = ours.identity;
const rcpt2 = ours.recipient;
const keyFile2 = tmpFile(`# created: 2024-01-01T00:00:00Z\n# public key: ${rcpt2}\n${id2}\n`);

const SIZES = [0, 1, 65535, 65536, 65537, 131072, 5 * 1024 * 1024 + 12345];
const CHUNK = 64 * 1024;

function payloadStart(file: Buffer): number {
  const mac = file.indexOf('\n--- ');
  assert.ok(mac > 0);
  return file.indexOf('\n', mac + 1) + 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Independent helpers for hand-crafted files (the spec, written out again on node:crypto).

const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
function polymod(values: number[]): number {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const b = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    gen.forEach((g, i) => { if ((b >>> i) & 1) chk ^= g; });
  }
  return chk;
}
function toWords(bytes: Buffer): number[] {
  const bits = [...bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
  const out: number[] = [];
  for (let i = 0; i < bits.length; i += 5) out.push(parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2));
  return out;
}
function bech32(hrp: string, bytes: Buffer): string {
  const words = toWords(bytes);
  const expand = [...hrp].map((c) => c.charCodeAt(0) >> 5).concat([0], [...hrp].map((c) => c.charCodeAt(0) & 31));
  const mod = polymod([...expand, ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const check = [0, 1, 2, 3, 4, 5].map((i) => (mod >>> (5 * (5 - i))) & 31);
  return hrp + '1' + [...words, ...check].map((w) => BECH32[w]).join('');
}
function unbech32(s: string): Buffer {
  const data = s.toLowerCase().slice(s.lastIndexOf('1') + 1, -6);
  const bits = [...data].map((c) => BECH32.indexOf(c).toString(2).padStart(5, '0')).join('');
  const out: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}
const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
const hkdf = (ikm: Buffer, salt: Buffer, info: string) => Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
function seal(key: Buffer, nonce: Buffer, pt: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
}
const SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const rawPub = (k: ReturnType<typeof createPublicKey>) => k.export({ format: 'der', type: 'spki' }).subarray(-32);

/** An age file built by hand: `chunks` are [plaintext, last-flag] as written, `pre` goes before the X25519 stanza. */
function craft(recipient: string, chunks: Array<[Buffer, boolean]>, o: { pre?: string; share?: Buffer } = {}): Buffer {
  const pub = unbech32(recipient);
  const fileKey = randomBytes(16);
  const eph = generateKeyPairSync('x25519');
  const share = rawPub(eph.publicKey);
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: createPublicKey({ key: Buffer.concat([SPKI, pub]), format: 'der', type: 'spki' }) });
  const body = seal(hkdf(shared, Buffer.concat([share, pub]), 'age-encryption.org/v1/X25519'), Buffer.alloc(12), fileKey);
  const header = `age-encryption.org/v1\n${o.pre ?? ''}-> X25519 ${b64(o.share ?? share)}\n${b64(body)}\n---`;
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(header).digest();
  const nonce = randomBytes(16);
  const key = hkdf(fileKey, nonce, 'payload');
  const parts: Buffer[] = [Buffer.from(`${header} ${b64(mac)}\n`), nonce];
  chunks.forEach(([pt, last], i) => {
    const n = Buffer.alloc(12);
    n.writeUIntBE(i, 5, 6);
    n[11] = last ? 1 : 0;
    parts.push(seal(key, n, pt));
  });
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------------------------
// Keys and interop

test('keys: age-keygen identities parse, recipientOf matches age-keygen -y, and our identities work with age', () => {
  assert.match(id1, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  assert.equal(recipientOf(id1), rcpt1);
  assert.match(rcpt2, /^age1[0-9a-z]{58}$/);
  assert.equal(recipientOf(id2), rcpt2);
  assert.equal(run('age-keygen', ['-y', keyFile2]).toString().trim(), rcpt2);
  for (let i = 0; i < 5; i++) {
    const g = generateIdentity();
    assert.equal(recipientOf(g.identity), g.recipient);
    assert.equal(run('age-keygen', ['-y'], Buffer.from(g.identity + '\n')).toString().trim(), g.recipient);
    const f = join(dir, `kg${i}`);
    run('age-keygen', ['-o', f]);
    const [id] = parseIdentities(readFileSync(f, 'utf8'), f);
    assert.equal(recipientOf(id!), run('age-keygen', ['-y', f]).toString().trim());
  }
  // the test's own independent Bech32 agrees with the module
  assert.equal(bech32('age', unbech32(rcpt1)), rcpt1);
  assert.equal(bech32('age-secret-key-', unbech32(id2)).toUpperCase(), id2);
});

test('interop: ours encrypts, age -d decrypts (and the payload framing is canonical)', async () => {
  for (const size of SIZES) {
    const data = randomBytes(size);
    const ct = await encrypt(data, [rcpt1]);
    const chunks = Math.max(1, Math.ceil(size / CHUNK));
    assert.equal(ct.length - payloadStart(ct), 16 + size + 16 * chunks, `size ${size}: one final chunk, no extra empty chunk`);
    assert.ok(run('age', ['-d', '-i', keyFile1], ct).equals(data), `size ${size}`);
    // our identity file works with the stock CLI too
    assert.ok(run('age', ['-d', '-i', keyFile2], await encrypt(data, [rcpt2])).equals(data), `size ${size} (our key)`);
  }
});

test('interop: age -r encrypts, ours decrypts', async () => {
  for (const size of SIZES) {
    const data = randomBytes(size);
    assert.ok((await decrypt(run('age', ['-r', rcpt1], data), [id1])).equals(data), `size ${size}`);
    assert.ok((await decrypt(run('age', ['-r', rcpt2], data), [id2])).equals(data), `size ${size} (our key)`);
  }
});

test('interop: age -R with two recipients; ours decrypts with either identity', async () => {
  const rfile = tmpFile(`# two recipients\n${rcpt1}\n\n# ours\n${rcpt2}\n`);
  assert.deepEqual(parseRecipients(readFileSync(rfile, 'utf8'), rfile), [rcpt1, rcpt2]);
  for (const size of [0, 65536, 200_000]) {
    const data = randomBytes(size);
    const ct = run('age', ['-R', rfile], data);
    assert.ok((await decrypt(ct, [id1])).equals(data));
    assert.ok((await decrypt(ct, [id2])).equals(data));
    assert.ok((await decrypt(ct, [generateIdentity().identity, id2])).equals(data), 'a non-matching identity first is fine');
  }
});

test('multiple recipients: ours to two recipients, decrypts with either (ours and stock age)', async () => {
  const data = randomBytes(150_000);
  const ct = await encrypt(data, [rcpt1, rcpt2]);
  assert.equal(ct.toString('latin1').split('\n-> X25519 ').length, 3);
  assert.ok((await decrypt(ct, [id1])).equals(data));
  assert.ok((await decrypt(ct, [id2])).equals(data));
  assert.ok(run('age', ['-d', '-i', keyFile1], ct).equals(data));
  assert.ok(run('age', ['-d', '-i', keyFile2], ct).equals(data));
});

test('chunk boundaries: decryptor and encryptor work whatever size the pieces fed to them', async () => {
  const data = randomBytes(3 * CHUNK + 1000);
  const fromAge = run('age', ['-r', rcpt1], data);
  const fromUs = await encrypt(data, [rcpt1]);
  for (const feed of [7, 16, 17, 1000, 65536, 65552, 65553, 3 * 65552 + 5, fromAge.length]) {
    assert.ok((await decrypt(fromAge, [id1], feed)).equals(data), `decrypt feed ${feed}`);
    assert.ok((await decrypt(fromUs, [id1], feed)).equals(data), `decrypt feed ${feed} (ours)`);
  }
  const small = randomBytes(CHUNK + 3000);
  assert.ok((await decrypt(run('age', ['-r', rcpt1], small), [id1], 1)).equals(small), 'decrypt feed 1');
  for (const feed of [1, 7, 65535, 65536, 65537, 1 << 20]) {
    const input = feed === 1 ? small : data;
    const ct = await encrypt(input, [rcpt1], feed);
    assert.ok(run('age', ['-d', '-i', keyFile1], ct).equals(input), `encrypt feed ${feed}`);
  }
  // exact multiples fed in pieces that end exactly on chunk boundaries: still no extra empty chunk
  const exact = randomBytes(2 * CHUNK);
  const ct = await encrypt(exact, [rcpt1], CHUNK);
  assert.equal(ct.length - payloadStart(ct), 16 + 2 * CHUNK + 32);
  assert.ok((await decrypt(ct, [id1])).equals(exact));
});

// ---------------------------------------------------------------------------------------------------------------
// Tampering

test('tamper: a flipped payload byte fails that chunk, and nothing of it is emitted', async () => {
  const data = randomBytes(3 * CHUNK + 500);
  const ct = await encrypt(data, [rcpt1]);
  const bad = Buffer.from(ct);
  const at = payloadStart(ct) + 16 + (CHUNK + 16) + 1234; // inside chunk 2
  bad[at] = bad[at]! ^ 0x01;
  const emitted = await rejectsDecrypt(bad, [id1], /^age: payload chunk 2 failed authentication/);
  assert.ok(emitted.equals(data.subarray(0, CHUNK)), 'only the verified chunk 1 was emitted');
  // a flipped tag byte in the final chunk
  const bad2 = Buffer.from(ct);
  bad2[bad2.length - 1] = bad2[bad2.length - 1]! ^ 0x80;
  await rejectsDecrypt(bad2, [id1], /^age: payload chunk 4 failed authentication/);
  // a flipped payload nonce byte breaks every chunk
  const bad3 = Buffer.from(ct);
  bad3[payloadStart(ct)] = bad3[payloadStart(ct)]! ^ 0x01;
  assert.equal((await rejectsDecrypt(bad3, [id1], /^age: payload chunk 1 failed authentication/)).length, 0);
});

test('tamper: a flipped header MAC byte is a MAC mismatch; a flipped stanza byte matches no identity', async () => {
  const ct = await encrypt(randomBytes(1000), [rcpt1]);
  const macAt = ct.indexOf('\n--- ') + 5;
  const bad = Buffer.from(ct);
  bad[macAt] = bad[macAt] === 0x41 ? 0x42 : 0x41; // first base64 char: stays canonical
  await rejectsDecrypt(bad, [id1], /^age: header MAC mismatch/);
  const text = ct.toString('latin1');
  const bodyAt = text.indexOf('\n', text.indexOf('-> X25519')) + 3;
  const bad2 = Buffer.from(ct);
  bad2[bodyAt] = bad2[bodyAt] === 0x41 ? 0x42 : 0x41;
  await rejectsDecrypt(bad2, [id1], /^age: no identity matches any recipient stanza/);
  // a changed header byte that still parses: the MAC catches it
  const extra = Buffer.from(text.replace('-> X25519 ', '-> future-type\n\n-> X25519 '), 'latin1');
  await rejectsDecrypt(extra, [id1], /^age: header MAC mismatch/);
});

test('tamper: truncation at a chunk boundary, mid-chunk, inside the tag, and before the payload', async () => {
  for (const size of [3 * CHUNK + 100, 3 * CHUNK]) {
    const ct = await encrypt(randomBytes(size), [rcpt1]);
    const lastLen = size % CHUNK === 0 ? CHUNK + 16 : (size % CHUNK) + 16;
    const before = Math.ceil(size / CHUNK) - 1; // full chunks before the final one
    const cut = ct.subarray(0, ct.length - lastLen); // ends right after a (non-final) full chunk
    const emitted = await rejectsDecrypt(cut, [id1], new RegExp(`^age: truncated payload \\(no final chunk after ${before} full chunks\\)`));
    assert.equal(emitted.length, before * CHUNK);
    await rejectsDecrypt(ct.subarray(0, ct.length - lastLen - (CHUNK + 16)), [id1], /^age: truncated payload \(no final chunk/);
    const last = before + 1;
    await rejectsDecrypt(ct.subarray(0, ct.length - 50), [id1], new RegExp(`^age: payload chunk ${last} failed authentication \\(final chunk corrupted, truncated mid-chunk, or followed by extra data\\)`));
    await rejectsDecrypt(ct.subarray(0, ct.length - lastLen + 10), [id1], new RegExp(`^age: truncated payload \\(chunk ${last} is shorter than its authentication tag\\)`));
  }
  const ct = await encrypt(randomBytes(10), [rcpt1]);
  const p = payloadStart(ct);
  await rejectsDecrypt(ct.subarray(0, p + 16), [id1], /^age: truncated payload \(no final chunk after 0 full chunks\)/);
  await rejectsDecrypt(ct.subarray(0, p + 5), [id1], /^age: truncated file \(payload nonce missing\)/);
  await rejectsDecrypt(ct.subarray(0, p - 10), [id1], /^age: truncated header/);
  await rejectsDecrypt(Buffer.alloc(0), [id1], /^age: empty input/);
});

test('tamper: trailing data after the final chunk is rejected', async () => {
  for (const size of [0, 100, CHUNK, 2 * CHUNK + 1]) {
    const ct = await encrypt(randomBytes(size), [rcpt1]);
    for (const extra of [1, 17, CHUNK + 16]) {
      await rejectsDecrypt(Buffer.concat([ct, randomBytes(extra)]), [id1], /^age: (trailing data after the final payload chunk|payload chunk \d+ failed authentication)/);
    }
    await rejectsDecrypt(Buffer.concat([ct, Buffer.from([0])]), [id1], size % CHUNK === 0 && size > 0 ? /^age: trailing data/ : /failed authentication|trailing data/);
  }
  // a full-size final chunk followed by anything is precisely "trailing data"
  const ct = await encrypt(randomBytes(CHUNK), [rcpt1]);
  await rejectsDecrypt(Buffer.concat([ct, Buffer.from('x')]), [id1], /^age: trailing data after the final payload chunk/);
  await rejectsDecrypt(Buffer.concat([ct, Buffer.from('x')]), [id1], /^age: trailing data after the final payload chunk/, 1);
});

test('tamper: the wrong identity matches no stanza', async () => {
  const ct = await encrypt(randomBytes(100), [rcpt1]);
  await rejectsDecrypt(ct, [id2], /^age: no identity matches any recipient stanza/);
  await rejectsDecrypt(run('age', ['-r', rcpt2], Buffer.from('hi')), [id1, generateIdentity().identity], /^age: no identity matches any recipient stanza/);
});

// ---------------------------------------------------------------------------------------------------------------
// Hand-crafted files: spec corner cases

test('crafted: a spec-built file decrypts; non-canonical STREAM framings are rejected', async () => {
  const full = randomBytes(CHUNK);
  const tail = randomBytes(99);
  assert.ok((await decrypt(craft(rcpt1, [[full, false], [tail, true]]), [id1])).equals(Buffer.concat([full, tail])));
  assert.equal((await decrypt(craft(rcpt1, [[Buffer.alloc(0), true]]), [id1])).length, 0);
  await rejectsDecrypt(craft(rcpt1, [[full, false], [Buffer.alloc(0), true]]), [id1], /^age: invalid payload \(empty final chunk 2 after 1 full chunks\)/);
  await rejectsDecrypt(craft(rcpt1, [[tail, false]]), [id1], /^age: truncated payload \(chunk 1 is short but not marked final\)/);
  await rejectsDecrypt(craft(rcpt1, [[tail, false], [tail, true]]), [id1], /^age: payload chunk 1 failed authentication/);
  await rejectsDecrypt(craft(rcpt1, [[full, true], [tail, true]]), [id1], /^age: trailing data after the final payload chunk/);
  await rejectsDecrypt(craft(rcpt1, [[full, false], [full, false]]), [id1], /^age: truncated payload \(no final chunk after 2 full chunks\)/);
});

test('crafted: unknown stanzas are skipped; malformed X25519 stanzas and low-order shares are errors', async () => {
  const data = Buffer.from('hello');
  const pre = '-> unknown-type arg1 arg2\nYWJj\n-> scrypt c2FsdA 18\n' + 'A'.repeat(64) + '\n\n';
  assert.ok((await decrypt(craft(rcpt1, [[data, true]], { pre }), [id1])).equals(data));
  await rejectsDecrypt(craft(rcpt2, [[data, true]], { pre }), [id1], /^age: no identity matches any recipient stanza \(skipped unsupported stanza types: unknown-type, scrypt\)/);
  await rejectsDecrypt(craft(rcpt1, [[data, true]], { pre: '-> X25519 a b\nYWJj\n' }), [id1], /^age: malformed X25519 stanza at header line 2: expected exactly one argument/);
  await rejectsDecrypt(craft(rcpt1, [[data, true]], { pre: '-> X25519 YWJj\nYWJj\n' }), [id1], /^age: malformed X25519 stanza .*ephemeral share/);
  await rejectsDecrypt(craft(rcpt1, [[data, true]], { share: Buffer.alloc(32) }), [id1], /^age: invalid X25519 stanza .*low-order ephemeral share/);
});

test('crafted: malformed or foreign headers are rejected with a precise message', async () => {
  const good = (await encrypt(Buffer.from('x'), [rcpt1])).toString('latin1');
  const cases: Array<[string | Buffer, RegExp]> = [
    [Buffer.concat([Buffer.from([0x89]), randomBytes(199)]), /^age: not an age file/],
    ['hello world\n', /^age: not an age file/],
    ['age-encryption.org/v2\n-> X25519 abc\n', /^age: unsupported age format version/],
    ['-----BEGIN AGE ENCRYPTED FILE-----\n', /^age: not a binary age file \(ASCII-armored/],
    [good.replace('age-encryption.org/v1\n', 'age-encryption.org/v1\r\n'), /^age: malformed header line 1: expected exactly/],
    [good.replace('-> X25519 ', '->  X25519 '), /^age: malformed header line 2: bad stanza line/],
    [good.replace('-> X25519 ', '-> X25519 \u00e9'), /^age: malformed header line 2: contains non-printable/],
    [good.replace('\n---', '\nnot a stanza\n---'), /^age: malformed header line 4: expected a "->" stanza or the "---" MAC line/],
    [good.replace(/\n--- (\S+)\n/, '\n--- $1=\n'), /^age: malformed header line 4: bad MAC line/],
    [good.replace(/\n--- (\S+)\n/, '\n---$1\n'), /^age: malformed header line 4: bad MAC line/],
    [good.replace(/\n(\S{43})\n---/, '\n$1=\n---'), /^age: malformed header line 3: stanza body is not canonical/],
    ['age-encryption.org/v1\n--- ' + 'A'.repeat(43) + '\n', /^age: header has no recipient stanzas/],
    ['age-encryption.org/v1\n-> X25519 abc\n' + 'A'.repeat(65) + '\n', /^age: malformed header line 3: stanza body line longer than 64/],
  ];
  for (const [input, re] of cases) {
    const buf = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
    await rejectsDecrypt(buf, [id1], re);
    await rejectsDecrypt(buf, [id1], re, 1);
  }
  await rejectsDecrypt(Buffer.from('age-encryption.org/v1\n-> X25519 ' + 'A'.repeat(2 * 1024 * 1024)), [id1], /^age: header too large/);
});

// ---------------------------------------------------------------------------------------------------------------
// Recipient and identity files

test('parseRecipients: lines, commas, spaces, comments; normalised to lower case', () => {
  const text = `# backup recipients\n${rcpt1}\n\n   ${rcpt2.toUpperCase()}   # ops laptop\n${rcpt1},${rcpt2} ${rcpt1}\r\n`;
  assert.deepEqual(parseRecipients(text, 'recipients.txt'), [rcpt1, rcpt2, rcpt1, rcpt2, rcpt1]);
});

test('parseRecipients: bad checksum, wrong HRP, wrong length, secret key, empty', () => {
  const badSum = rcpt2.slice(0, -1) + (rcpt2.endsWith('q') ? 'p' : 'q');
  const check = (text: string, re: RegExp, secret: string) => {
    assert.throws(() => parseRecipients(text, '/etc/dr/recipients'), (err: Error) => {
      assert.match(err.message, /^\/etc\/dr\/recipients: /);
      assert.match(err.message, re);
      assert.ok(!err.message.includes(secret), `message must not contain the bad key: ${err.message}`);
      return true;
    });
  };
  check(`${rcpt1}\n# c\n${badSum}\n`, /recipient 2 \(line 3\) "age1\w{4}…" has an invalid Bech32 checksum/, badSum);
  const wrongHrp = bech32('agx', randomBytes(32));
  check(`${rcpt1} ${wrongHrp}`, /recipient 2 \(line 1\).* is not an age X25519 recipient/, wrongHrp);
  const short = bech32('age', randomBytes(31));
  check(short, /recipient 1 \(line 1\).* holds 31 bytes/, short);
  check(`${rcpt1}\n${id2}\n`, /recipient 2 \(line 2\) is a secret key \(identity\), not a recipient/, id2);
  check(`${rcpt1}\n${id2.slice(0, -1)}X\n`, /recipient 2 \(line 2\) is a secret key/, id2.slice(0, -1));
  const mixed = `${rcpt1.slice(0, 10)}${rcpt1.slice(10).toUpperCase()}`;
  check(mixed, /mixes upper and lower case/, mixed);
  check('', /no recipients found/, 'zzz-never');
  check('# nothing here\n\n  \n', /no recipients found/, 'zzz-never');
});

test('parseIdentities: age-keygen files and ours; bad checksum, wrong HRP, empty; never echoes the key', () => {
  assert.deepEqual(parseIdentities(readFileSync(keyFile2, 'utf8'), keyFile2), [id2]);
  assert.deepEqual(parseIdentities(`${readFileSync(keyFile1, 'utf8')}\n${readFileSync(keyFile2, 'utf8')}`, 'both'), [id1, id2]);
  assert.deepEqual(parseIdentities(`  ${id2.toLowerCase()}  \r\n`, 'lower'), [id2]);
  const badSum = id1.slice(0, -1) + (id1.endsWith('Q') ? 'P' : 'Q');
  const check = (text: string, re: RegExp, secret: string) => {
    assert.throws(() => parseIdentities(text, '/root/.dr/key.txt'), (err: Error) => {
      assert.match(err.message, /^\/root\/\.dr\/key\.txt: /);
      assert.match(err.message, re);
      assert.ok(!err.message.includes(secret), `message must not contain the key: ${err.message}`);
      if (secret.length > 40) assert.ok(!err.message.includes(secret.slice(16, 30)), `message must not contain part of the key: ${err.message}`);
      return true;
    });
  };
  check(`# created: x\n# public key: ${rcpt1}\n${badSum}\n`, /line 3: the identity has an invalid Bech32 checksum/, badSum);
  const wrongHrp = bech32('age-secret-kez-', randomBytes(32)).toUpperCase();
  check(`${wrongHrp}\n`, /line 1: the identity is not an age X25519 identity/, wrongHrp);
  check(`${rcpt1}\n`, /line 1: the identity is a recipient \(public key\), not an identity/, rcpt1);
  check(`${id1}\nAGE-SECRET-KEY-1${'Q'.repeat(20)}\n`, /line 2: /, 'Q'.repeat(20));
  check('', /no identities found/, 'zzz-never-present');
  check('# created: 2024\n\n', /no identities found/, 'zzz-never-present');
  check('age-encryption.org/v1\n-> scrypt xyz 18\n', /encrypted \(passphrase-protected\) identity file/, 'zzz-never-present');
});

test('invalid keys given to the streams throw AgeError before any data flows', () => {
  assert.throws(() => createEncryptStream([]), AgeError);
  assert.throws(() => createEncryptStream([rcpt1.slice(0, -1) + (rcpt1.endsWith('q') ? 'p' : 'q')]), /^AgeError: age: recipient 1 has an invalid Bech32 checksum/);
  assert.throws(() => createEncryptStream([bech32('age', Buffer.alloc(32))]), /recipient 1 is not a usable X25519 public key/);
  assert.throws(() => createDecryptStream([]), AgeError);
  assert.throws(() => createDecryptStream([rcpt1]), (err: Error) => err instanceof AgeError && !err.message.includes(rcpt1));
  assert.throws(() => recipientOf('AGE-SECRET-KEY-1QQQ'), AgeError);
});

// ---------------------------------------------------------------------------------------------------------------

/** Streams `pieces` through `t` into a plain Writable (flowing mode, as when piping to a file); returns the output pieces. */
async function timed(t: Transform, pieces: Buffer[]): Promise<{ out: Buffer[]; ms: number }> {
  const out: Buffer[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { out.push(c); cb(); } });
  const t0 = performance.now();
  await pipeline(Readable.from(pieces), t, sink);
  return { out, ms: performance.now() - t0 };
}

test('throughput: encrypt and decrypt 64 MiB in-process (informational)', async () => {
  const data = Buffer.allocUnsafe(64 * 1024 * 1024);
  randomFillSync(data);
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += 64 * 1024) pieces.push(data.subarray(i, i + 64 * 1024));
  await timed(createDecryptStream([id1]), (await timed(createEncryptStream([rcpt1]), pieces.slice(0, 512))).out); // warm-up (JIT, allocator)
  const enc = await timed(createEncryptStream([rcpt1]), pieces);
  const dec = await timed(createDecryptStream([id1]), enc.out);
  assert.ok(Buffer.concat(dec.out).equals(data));
  const mbps = (ms: number) => (data.length / (1024 * 1024) / (ms / 1000)).toFixed(0);
  console.log(`age throughput (64 MiB, 64 KiB writes): encrypt ${mbps(enc.ms)} MB/s, decrypt ${mbps(dec.ms)} MB/s`);
});
