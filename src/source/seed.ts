/**
 * The embedded default's repo: the bundled examples copied into a git repo under the data folder
 * on first start, so that a newcomer can change a Compose file there, commit, and watch berth converge.
 */
import fs from 'node:fs';
import { cp } from 'node:fs/promises';
import { join, relative } from 'node:path';
import git from 'isomorphic-git';

/** Creates `dir` as a git repo holding a copy of `examples` on branch main, unless it exists. Returns true when it made it. */
export async function seedExamplesRepo(dir: string, examples: string): Promise<boolean> {
  if (fs.existsSync(join(dir, '.git'))) return false;
  await cp(examples, dir, { recursive: true });
  await git.init({ fs, dir, defaultBranch: 'main' });
  for (const file of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!file.isFile()) continue;
    const path = relative(dir, join(file.parentPath, file.name));
    if (!path.startsWith('.git/')) await git.add({ fs, dir, filepath: path });
  }
  await git.commit({ fs, dir, message: 'The bundled examples', author: { name: 'berth', email: 'berth@localhost' } });
  return true;
}
