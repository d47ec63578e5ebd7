/** MariaDB / MySQL logins and client command lines (official mariadb image variables: MARIADB_* with MYSQL_* aliases). */
import { DrError } from '../../core/errors.ts';
import { containerSecret } from '../credentials.ts';
import type { DbTarget } from '../engine.ts';

export const SYSTEM_SCHEMAS = new Set(['information_schema', 'performance_schema', 'mysql', 'sys']);

/** The client login: user plus the exec environment carrying the password (MYSQL_PWD, never argv). */
export async function mariadbLogin(t: DbTarget): Promise<{ user: string; env: Record<string, string> }> {
  const rootPw = await containerSecret(t, ['MARIADB_ROOT_PASSWORD', 'MYSQL_ROOT_PASSWORD']);
  if (rootPw) return { user: 'root', env: { MYSQL_PWD: rootPw } };
  if (t.env.get('MARIADB_ALLOW_EMPTY_ROOT_PASSWORD') || t.env.get('MYSQL_ALLOW_EMPTY_PASSWORD')) return { user: 'root', env: {} };
  const user = t.env.get('MARIADB_USER') ?? t.env.get('MYSQL_USER');
  const pw = await containerSecret(t, ['MARIADB_PASSWORD', 'MYSQL_PASSWORD']);
  if (user && pw) return { user, env: { MYSQL_PWD: pw } };
  throw new DrError(
    `${t.name}: no MariaDB credentials in the container's environment`,
    undefined,
    'set MARIADB_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD_FILE) on the container, as the official image expects',
  );
}

/** argv that runs the client available in the image (mariadb, else mysql) with the given arguments. */
export function mariadbClient(args: string[]): string[] {
  return ['sh', '-c', 'exec "$(command -v mariadb || command -v mysql)" "$@"', 'sh', ...args];
}

/** The dump command: the same at backup and when a restore re-dumps to compare table statistics. */
export function mariadbDumpCmd(user: string, db: string, verbose = false): string[] {
  return ['sh', '-c', 'exec "$(command -v mariadb-dump || command -v mysqldump)" "$@"', 'sh', `-u${user}`, '--single-transaction',
    '--routines', '--triggers', '--events', '--hex-blob', '--default-character-set=utf8mb4', '--skip-dump-date',
    ...(verbose ? ['--verbose'] : []), '--databases', db];
}
