/**
 * `extends:`: a service built on another one, of the same file or of another file of the
 * repository (relative to the extending file). The base, itself resolved first (chains work), is
 * merged under the extending service with Compose's merge rules; a cycle is an error. Whatever
 * comes from the base keeps the place it was written, so its errors point into the base's file.
 */
import type { SourceError } from '../model.ts';
import { mergeService } from './merge.ts';
import type { ComposeModel, ServicePart } from './normalize.ts';
import { siteError } from './positions.ts';
import { closest } from './validate.ts';

/** The model of another file, for an `extends.file`; undefined when it does not exist or did not load (its own errors reported). */
export type LoadFile = (file: string) => ComposeModel | undefined | 'missing';

/** Replaces every extending service of `model` (the model of `file`) by its base merged under it. */
export function resolveExtends(model: ComposeModel, file: string, load: LoadFile, errors: SourceError[]): void {
  const done = new Map<string, ServicePart | undefined>();
  const models = new Map<string, ComposeModel>([[file, model]]);

  const resolve = (inFile: string, from: ComposeModel, part: ServicePart, chain: string[]): ServicePart | undefined => {
    const id = `${inFile}#${part.name}`;
    if (!part.extends) return part;
    if (done.has(id)) return done.get(id);
    const { value: ref, at } = part.extends;
    let result: ServicePart | undefined;
    const base = ref.file === inFile ? from : (models.get(ref.file) ?? load(ref.file));
    if (base === 'missing') errors.push(siteError(at, `${ref.file} does not exist in the repository`));
    else if (base) {
      models.set(ref.file, base);
      const target = base.services.get(ref.service);
      const baseId = `${ref.file}#${ref.service}`;
      if (!target) {
        const hint = closest(ref.service, [...base.services.keys()]);
        errors.push(siteError(at, `service '${ref.service}' is not defined in ${ref.file}${hint ? ` (did you mean '${hint}'?)` : ''}`));
      } else if (chain.includes(baseId) || baseId === id) {
        const names = [...chain, id, baseId].slice(chain.indexOf(baseId) < 0 ? chain.length : chain.indexOf(baseId));
        errors.push(siteError(at, `extends cycle: ${names.map((n) => n.replace(/^.*#/, '')).join(' -> ')}`));
      } else {
        const resolvedBase = resolve(ref.file, base, target, [...chain, id]);
        if (resolvedBase) result = { ...mergeService(resolvedBase, part), name: part.name, at: part.at, extends: undefined };
      }
    }
    done.set(id, result);
    return result;
  };

  for (const [name, part] of model.services) {
    const resolved = resolve(file, model, part, []);
    if (resolved) model.services.set(name, resolved);
  }
}
