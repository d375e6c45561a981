/**
 * The sources of a repo's secrets and configs outside the repo (the engine config's
 * `repos[].secrets`; docs/manifests.md, "Secrets, configs and repo files"): files in the repo's
 * secrets folder (`external: true`) and the engine's environment variables the config lets that
 * repo read. Nothing here ever logs a value.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RepoConfig } from '../config.ts';
import type { RenderOptions } from '../model.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export interface RepoSecrets {
  options: RenderOptions;
  /** changes when a file of the secrets folder changes: a rotation there re-renders the commit */
  fingerprint(): string;
}

/** What render may read for repo `r`: only its own folder, only the variables its config names. */
export function repoSecrets(r: RepoConfig, env: NodeJS.ProcessEnv = process.env): RepoSecrets {
  const allowed = r.secrets?.environment ?? [];
  const may = (name: string) => allowed.some((a) => (a.endsWith('*') ? name.startsWith(a.slice(0, -1)) : a === name));
  const dir = r.secrets?.dir;
  return {
    options: {
      environment: (name) => (may(name) ? env[name] : undefined),
      external: (name) => {
        if (!dir || !NAME.test(name)) return undefined;
        try {
          return readFileSync(join(dir, name));
        } catch {
          return undefined;
        }
      },
    },
    fingerprint: () => {
      if (!dir) return '';
      try {
        return readdirSync(dir)
          .sort()
          .map((f) => {
            const st = statSync(join(dir, f));
            return `${f}:${st.size}:${st.mtimeMs}`;
          })
          .join('/');
      } catch {
        return 'unreadable';
      }
    },
  };
}
