import type { Options } from 'ajv';

/**
 * The ajv options berth validates with: src/render/validate.ts compiles with them at run time,
 * scripts/compile-schema.ts compiles the Compose schema ahead of time with them.
 */
export const AJV_OPTIONS = { allErrors: true, strict: false, validateSchema: false, verbose: true } as const satisfies Options;
