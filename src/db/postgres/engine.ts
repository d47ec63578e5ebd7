/** PostgreSQL (official postgres image variables: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA). */
import { execChecked } from '../../docker/exec.ts';
import { containerSecret } from '../credentials.ts';
import type { DbTarget, Engine } from '../engine.ts';

export async function postgresLogin(t: DbTarget): Promise<{ user: string; db: string; env: Record<string, string> }> {
  const user = t.env.get('POSTGRES_USER') || 'postgres';
  const db = t.env.get('POSTGRES_DB') || user;
  const pw = await containerSecret(t, ['POSTGRES_PASSWORD']);
  // Inside the container the local socket is normally `trust`; PGPASSWORD covers images that require it.
  return { user, db, env: pw ? { PGPASSWORD: pw } : {} };
}

export const postgres: Engine = {
  kind: 'postgres',
  dataPath: (env) => env.get('PGDATA') || '/var/lib/postgresql/data',
  async probe(t) {
    const login = await postgresLogin(t);
    const out = await execChecked(t.container, t.name, 'querying PostgreSQL', {
      cmd: ['psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-U', login.user, '-d', login.db,
        '-c', 'SHOW server_version',
        '-c', 'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname'],
      env: login.env,
    });
    const [serverVersion = '', ...dbs] = out.split('\n').map((l) => l.trim()).filter(Boolean);
    return {
      serverVersion,
      version: /^(\d+(?:\.\d+)?)/.exec(serverVersion)?.[1] ?? serverVersion,
      databases: dbs,
    };
  },
};
