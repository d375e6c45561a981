import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { composeValidatorSource, GENERATED } from '../../scripts/compile-schema.ts';

describe('the precompiled Compose schema (src/render/compose-schema.cjs)', () => {
  it('is what scripts/compile-schema.ts makes from compose-spec.json and the ajv options now (else: npm run schema)', () => {
    expect(readFileSync(GENERATED, 'utf8') === composeValidatorSource(), 'src/render/compose-schema.cjs is stale: run `npm run schema`').toBe(true);
  });
});
