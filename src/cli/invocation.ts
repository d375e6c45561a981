/**
 * How the person ran berth, to print hints they can paste: `npm run berth -- --config x.yaml
 * resume web` when they used npm, `berth resume web` when they used the installed command, with
 * the `--config` they gave (BERTH_CONFIG, an environment variable, stays set in their shell).
 */
import { basename, relative } from 'node:path';

/** The command line that runs berth with `args`, as this process was started. */
export function invocation(
  args: string[],
  { config, env = process.env, argv = process.argv }: { config?: string; env?: NodeJS.ProcessEnv; argv?: string[] } = {},
): string {
  const script = argv[1] ?? 'berth';
  const base =
    env.npm_lifecycle_event === 'berth'
      ? ['npm', 'run', 'berth', '--']
      : basename(script) === 'berth'
        ? ['berth']
        : ['node', relative(process.cwd(), script) || script];
  return [...base, ...(config ? ['--config', config] : []), ...args].map(quote).join(' ');
}

/** A word as a POSIX shell reads it back. */
function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
