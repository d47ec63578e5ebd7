/** The wiring of a command's context: configuration from the environment, the logger, the Docker connection. */
import { loadEnv, readConfig, describeDocker } from '../core/config.ts';
import { createLogger } from '../core/log.ts';
import type { Context } from '../core/context.ts';
import { connectDocker, type Docker } from '../docker/client.ts';

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
