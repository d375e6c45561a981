/**
 * A Docker API request as `METHOD /template`: the version prefix and the query dropped, the object
 * a path names (a container, network, volume or image, by id or name) folded to `{id}` or
 * `{name}`. The simulator counts its calls by it, and the conformance test compares berth's calls
 * on a real daemon and on a simulated host by it.
 */

const TEMPLATES: Array<[RegExp, string]> = [
  [/^\/containers\/(json|create)$/, '/containers/$1'],
  [/^\/containers\/[^/]+\/([a-z]+)$/, '/containers/{id}/$1'],
  [/^\/containers\/[^/]+$/, '/containers/{id}'],
  [/^\/networks\/create$/, '/networks/create'],
  [/^\/networks\/[^/]+\/(connect|disconnect)$/, '/networks/{id}/$1'],
  [/^\/networks\/[^/]+$/, '/networks/{id}'],
  [/^\/volumes\/create$/, '/volumes/create'],
  [/^\/volumes\/[^/]+$/, '/volumes/{name}'],
  [/^\/images\/(json|create|load|prune|search|get)$/, '/images/$1'],
  [/^\/images\/.+\/(json|tag|push|history|get)$/, '/images/{name}/$1'],
  [/^\/images\/.+$/, '/images/{name}'],
  [/^\/distribution\/.+\/json$/, '/distribution/{name}/json'],
  [/^\/exec\/[^/]+\/([a-z]+)$/, '/exec/{id}/$1'],
];

/** The path of a request URL without the API version prefix and the query. */
export function pathOf(url: string): string {
  return url.split('?')[0]!.replace(/^\/v\d+\.\d+(?=\/)/, '');
}

/** `GET /containers/4f2a.../json?size=false` -> `GET /containers/{id}/json`. */
export function callTemplate(method: string, url: string): string {
  const path = pathOf(url);
  for (const [re, template] of TEMPLATES) if (re.test(path)) return `${method} ${path.replace(re, template)}`;
  return `${method} ${path}`;
}

/** Whether a call changes something on the host (what a no-op pass must not make). */
export const isMutating = (method: string): boolean => method !== 'GET' && method !== 'HEAD';
