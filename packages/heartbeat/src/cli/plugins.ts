/**
 * The parts the `heartbeat` command plugs into the daemon: the media built from ha.cf (src/media) and
 * the resource manager (src/rm, loaded by path at run time so that the daemon and its tests do not
 * depend on it).
 *
 * Contract:
 * - src/rm/index.ts exports `createResourceManager(args: ResourceManagerFactoryArgs):
 *   ResourceManagerPlugin | undefined | Promise<...>` (undefined when there is nothing to manage).
 */
import type { Logger } from '@tandem/core';
import type { HaConfig } from '../hacf.ts';
import type { ResourceManagerFactoryArgs, ResourceManagerPlugin } from '../daemon.ts';
import type { AuthKeys, Medium } from '../types.ts';
import { createMedia } from '../media/index.ts';
import { activeKey } from '../codec.ts';

type RmModule = { createResourceManager?: (args: ResourceManagerFactoryArgs) => ResourceManagerPlugin | undefined | Promise<ResourceManagerPlugin | undefined> };

async function importOptional<T>(rel: string): Promise<T | undefined> {
  try {
    return (await import(new URL(rel, import.meta.url).href)) as T;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(rel.replace(/^\.\.\//, ''))) return undefined;
    throw err;
  }
}

export function buildMedia(cfg: HaConfig, keys: AuthKeys, logger: Logger): Medium[] {
  // Send and socket errors are logged at debug level: a cable pulled must not flood the log at every
  // keepalive; the link going dead is what gets reported.
  return createMedia(cfg, { key: activeKey(keys), onError: (err) => logger.debug(`medium: ${err.message}`) });
}

export async function loadResourceManager(args: ResourceManagerFactoryArgs): Promise<ResourceManagerPlugin | undefined> {
  const mod = await importOptional<RmModule>('../rm/index.ts');
  if (!mod?.createResourceManager) {
    args.logger.warn('resource manager not available (src/rm): heartbeat runs membership only and manages no resources');
    return undefined;
  }
  return mod.createResourceManager(args);
}
