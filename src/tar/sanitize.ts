/**
 * Tar entry rules for restores (pure logic). An archive entry is refused, naming it, when it could write
 * outside the volume or create something a volume must not contain:
 *   - an absolute path or a `..` component
 *   - a symlink whose target is absolute or leaves the volume when resolved from the link's directory
 *   - a hard link whose target is absolute or leaves the volume
 *   - a character or block device node
 *   - an entry type this tool does not know
 * Absolute symlink targets are refused too: from the volume's point of view they point outside it.
 */
import { posix } from 'node:path';

export interface EntryLike {
  name: string;
  type?: string | null;
  linkname?: string | null;
}

const ALLOWED = new Set(['file', 'contiguous-file', 'directory', 'symlink', 'link', 'fifo']);

/** Normalised path of `name` inside the volume, or null when it escapes. "." is the root. */
export function insideVolume(name: string, base = '.'): string | null {
  if (name.startsWith('/') || name.includes('\0')) return null;
  const joined = posix.normalize(posix.join(base, name));
  if (joined === '..' || joined.startsWith('../') || joined.startsWith('/')) return null;
  return joined.replace(/\/+$/, '') || '.';
}

/** Returns why the entry is refused, or null when it is safe. */
export function entryProblem(e: EntryLike): string | null {
  const type = e.type ?? 'file';
  const name = e.name;
  if (name.startsWith('/')) return `absolute path ${JSON.stringify(name)}`;
  if (name.split('/').includes('..')) return `path ${JSON.stringify(name)} contains ".."`;
  if (name.includes('\0')) return 'path contains a NUL byte';
  if (type === 'character-device' || type === 'block-device') return `device node ${JSON.stringify(name)} (${type})`;
  if (!ALLOWED.has(type)) return `entry ${JSON.stringify(name)} has unsupported type ${type}`;
  const path = insideVolume(name);
  if (path === null) return `path ${JSON.stringify(name)} leaves the volume`;
  if (type === 'symlink') {
    const target = e.linkname ?? '';
    if (!target) return `symlink ${JSON.stringify(name)} has no target`;
    if (target.startsWith('/')) return `symlink ${JSON.stringify(name)} points to the absolute path ${JSON.stringify(target)}, outside the volume`;
    if (insideVolume(target, posix.dirname(path)) === null) return `symlink ${JSON.stringify(name)} -> ${JSON.stringify(target)} leaves the volume`;
  }
  if (type === 'link') {
    const target = e.linkname ?? '';
    if (!target || target.startsWith('/') || insideVolume(target) === null || target.split('/').includes('..')) {
      return `hard link ${JSON.stringify(name)} -> ${JSON.stringify(target)} leaves the volume`;
    }
  }
  return null;
}
