/** PostgreSQL logins and the dump command (official postgres image variables: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB). */
import { containerSecret } from '../credentials.ts';
import type { DbTarget } from '../engine.ts';

export async function postgresLogin(t: DbTarget): Promise<{ user: string; db: string; env: Record<string, string> }> {
  const user = t.env.get('POSTGRES_USER') || 'postgres';
  const db = t.env.get('POSTGRES_DB') || user;
  const pw = await containerSecret(t, ['POSTGRES_PASSWORD']);
  // Inside the container the local socket is normally `trust`; PGPASSWORD covers images that require it.
  return { user, db, env: pw ? { PGPASSWORD: pw } : {} };
}

/** The dump command: the same at backup and when a restore re-dumps to compare table statistics. */
export function pgDumpCmd(user: string, db: string): string[] {
  return ['pg_dump', '-U', user, '--no-password', '-d', db];
}
