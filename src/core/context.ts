/** What every command starts from: validated config, a logger, and (on demand) the Docker engine. Made by src/cli/context.ts. */
import type Docker from 'dockerode';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

export interface Context {
  config: Config;
  log: Logger;
  docker(): Promise<Docker>;
  dockerEndpoint: string;
}
