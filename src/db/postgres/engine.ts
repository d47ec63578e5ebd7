/** PostgreSQL: probe, dump, replay into a throwaway container, compare. */
import { execChecked } from '../../docker/exec.ts';
import { postgresLogin } from './client.ts';
import { preparePostgresDump } from './dump.ts';
import { replayPostgres, comparePostgres } from './replay.ts';
import type { Engine } from '../engine.ts';

export const postgres: Engine = {
  kind: 'postgres',
  image: /^(postgres|postgis|pgvector|timescaledb)/,
  executables: ['postgres', 'postmaster'],
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
  prepareDump: preparePostgresDump,
  throwaway: 'stack',
  replay: replayPostgres,
  compare: comparePostgres,
};
