/** MariaDB / MySQL: probe, dump, replay into a throwaway container, compare. */
import { execChecked } from '../../docker/exec.ts';
import { mariadbLogin, mariadbClient, SYSTEM_SCHEMAS } from './client.ts';
import { prepareMariadbDump } from './dump.ts';
import { replayMariadb, compareMariadb } from './replay.ts';
import type { Engine } from '../engine.ts';

export const mariadb: Engine = {
  kind: 'mariadb',
  image: /^(mariadb|mysql|percona)/,
  executables: ['mariadbd', 'mysqld'],
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
  prepareDump: prepareMariadbDump,
  throwaway: 'stack',
  replay: replayMariadb,
  compare: compareMariadb,
};
