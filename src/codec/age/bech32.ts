/**
 * Bech32 (BIP-173, not bech32m), the encoding of age keys: recipients `age1…` (HRP "age", lower case), identities
 * `AGE-SECRET-KEY-1…` (HRP "AGE-SECRET-KEY-", upper case).
 */
const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32_REV = new Map<string, number>([...BECH32_CHARSET].map((c, i) => [c, i]));
const BECH32_GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function bech32Polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= BECH32_GEN[i]!;
  }
  return chk;
}

function bech32HrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

/** Regroups bits; without padding, leftover bits must be fewer than `from` and all zero (BIP-173). */
function convertBits(data: readonly number[], from: number, to: number, pad: boolean): number[] | undefined {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (const v of data) {
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & maxv);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || acc !== 0) {
    return undefined;
  }
  return out;
}

/** Lower-case Bech32 encoding of `bytes` under `hrp` (callers upper-case the whole string where needed). */
export function bech32Encode(hrp: string, bytes: Uint8Array): string {
  const lower = hrp.toLowerCase();
  const data = convertBits([...bytes], 8, 5, true)!;
  const mod = bech32Polymod([...bech32HrpExpand(lower), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  let out = lower + '1';
  for (const d of data) out += BECH32_CHARSET[d];
  for (let i = 0; i < 6; i++) out += BECH32_CHARSET[(mod >>> (5 * (5 - i))) & 31];
  return out;
}

/**
 * Decodes a Bech32 string (all lower or all upper case). Returns the lower-cased HRP and the data bytes; throws
 * a plain Error whose message is a reason that never quotes the input. No 90-character limit (as in age).
 */
export function bech32Decode(s: string): { hrp: string; bytes: Buffer } {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 33 || c > 126) throw new Error('contains a character that is not allowed in Bech32');
  }
  const lower = s.toLowerCase();
  if (lower !== s && s.toUpperCase() !== s) throw new Error('mixes upper and lower case');
  const sep = lower.lastIndexOf('1');
  if (sep < 1) throw new Error('is not Bech32 (no "1" separator after a prefix)');
  if (sep + 7 > lower.length) throw new Error('is too short to hold a Bech32 checksum');
  const hrp = lower.slice(0, sep);
  const values: number[] = [];
  for (let i = sep + 1; i < lower.length; i++) {
    const v = BECH32_REV.get(lower[i]!);
    if (v === undefined) throw new Error('contains a character that is not in the Bech32 alphabet');
    values.push(v);
  }
  if (bech32Polymod([...bech32HrpExpand(hrp), ...values]) !== 1) throw new Error('has an invalid Bech32 checksum (typo or truncated?)');
  const bytes = convertBits(values.slice(0, -6), 5, 8, false);
  if (!bytes) throw new Error('has invalid Bech32 padding');
  return { hrp, bytes: Buffer.from(bytes) };
}
