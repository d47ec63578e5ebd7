/** What every command starts from: validated config, a logger, and (on demand) the Docker engine. */
import { loadEnv, readConfig, describeDocker, type Config } from '../core/config.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { connectDocker, type Docker } from '../docker/client.ts';

export interface Context {
  config: Config;
  log: Logger;
  docker(): Promise<Docker>;
  dockerEndpoint: string;
}

export function createContext(env = process.env): Context {
  const config = readConfig(loadEnv(env));
  const log = createLogger(config.logLevel);
  let docker: Promise<Docker> | undefined;
  return {
    config,
    log,
    dockerEndpoint: describeDocker(config.docker),
    docker: () => (docker ??= connectDocker(config)),
  };
}
