/** MariaDB / MySQL (official mariadb image variables: MARIADB_* with MYSQL_* aliases). */
import { DrError } from '../../core/errors.ts';
import { execChecked } from '../../docker/exec.ts';
import { containerSecret } from '../credentials.ts';
import type { DbTarget, Engine } from '../engine.ts';

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

export const mariadb: Engine = {
  kind: 'mariadb',
  dataPath: () => '/var/lib/mysql',
  async probe(t) {
    const login = await mariadbLogin(t);
    const out = await execChecked(t.container, t.name, 'querying MariaDB', {
      cmd: mariadbClient([`-u${login.user}`, '-N', '-B', '-e', 'SELECT VERSION(); SHOW DATABASES;']),
      env: login.env,
    });
    const [serverVersion = '', ...dbs] = out.split('\n').map((l) => l.trim()).filter(Boolean);
    return {
      serverVersion,
      version: /^(\d+\.\d+\.\d+)/.exec(serverVersion)?.[1] ?? serverVersion,
      databases: dbs.filter((d) => !SYSTEM_SCHEMAS.has(d)),
    };
  },
};
