/**
 * The one seam for test hooks. A run passes named stages (`part:<key>` as a part is read, `volume:<name>`,
 * `manifest`, `locked`, `restore:volume:<name>`, `restore:db:<container>`, `restore:replay:<container>`,
 * `restore:start`); with no hook module loaded, stage() resolves at once and stageTap() returns null (the
 * pipeline then inserts no tap). DR_TEST_HOOKS=<absolute path of a module> names a module that main() loads
 * once at start-up; its default export (Hooks) then runs at each stage. Production never sets the variable:
 * like NODE_OPTIONS, it only loads a module the operator names. The fault suite's module is
 * test/support/hold.ts (outside src/, so the image does not carry it).
 */
import type { Transform } from 'node:stream';
import { pathToFileURL } from 'node:url';

export interface Hooks {
  /** runs as the stage is reached; the run waits for it (a rejection fails the run) */
  stage?(name: string, signal?: AbortSignal): Promise<void>;
  /** a pass-through put in the stage's stream (a part being read), or null for none */
  stageTap?(name: string, signal?: AbortSignal): Transform | null;
}

let hooks: Hooks = {};

export async function loadHooks(path = process.env.DR_TEST_HOOKS): Promise<void> {
  if (path) hooks = ((await import(pathToFileURL(path).href)) as { default: Hooks }).default;
}

export function stage(name: string, signal?: AbortSignal): Promise<void> {
  return hooks.stage?.(name, signal) ?? Promise.resolve();
}

export function stageTap(name: string, signal?: AbortSignal): Transform | null {
  return hooks.stageTap?.(name, signal) ?? null;
}
