import { describe, expect, test } from 'vitest';
import { interpolate } from '../../src/render/interpolate.ts';
import { parseDotenv } from '../../src/render/dotenv.ts';
import { errorsOf, serviceOf } from './helpers.ts';

const vars = new Map([
  ['A', 'a'],
  ['EMPTY', ''],
]);
const lookup = (name: string) => vars.get(name);
const BAD_DOLLAR = "invalid interpolation: a '$' must start $VAR or ${VAR} (write $$ for a literal $)";
const UNCLOSED = "invalid interpolation: a '${' is never closed (write $$ for a literal $)";
const BAD_BRACES = 'invalid interpolation: use ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt} or ${VAR+alt}';

describe('interpolate', () => {
  test.each([
    ['plain text', 'plain text'],
    ['$A', 'a'],
    ['${A}', 'a'],
    ['pre-$A-post', 'pre-a-post'],
    ['${A}${A}', 'aa'],
    ['$A_B', ''], // the name is A_B, which is unset
    ['${UNSET}', ''],
    ['$UNSET', ''],
    ['${UNSET:-dflt}', 'dflt'],
    ['${EMPTY:-dflt}', 'dflt'],
    ['${A:-dflt}', 'a'],
    ['${UNSET-dflt}', 'dflt'],
    ['${EMPTY-dflt}', ''],
    ['${A:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${EMPTY?msg}', ''],
    ['${A:?msg}', 'a'],
    ['$$A', '$A'],
    ['$${A}', '${A}'],
    ['cost: $$5', 'cost: $5'],
    ['${UNSET:-${A}}', 'a'],
    ['${UNSET:-x${UNSET2:-y}z}', 'xyz'],
    ['${UNSET:-a b: c}', 'a b: c'],
  ])('%s -> %s', (input, output) => {
    expect(interpolate(input, lookup)).toEqual({ value: output });
  });

  test.each([
    ['${UNSET:?set UNSET please}', 'required variable UNSET is missing a value: set UNSET please'],
    ['${EMPTY:?}', 'required variable EMPTY is missing a value'],
    ['${UNSET?no ${A}}', 'required variable UNSET is missing a value: no a'],
    ['$1', BAD_DOLLAR],
    ['costs 5$', BAD_DOLLAR],
    ['${A', UNCLOSED],
    ['${A:-${B}', UNCLOSED],
    ['${A:x}', BAD_BRACES],
    ['${}', BAD_BRACES],
    ['${A B}', BAD_BRACES],
  ])('%s fails: %s', (input, message) => {
    expect(interpolate(input, lookup)).toEqual({ error: message });
  });

  test('never reads the process environment', () => {
    process.env.BERTH_TEST_LEAK = 'leaked';
    try {
      expect(interpolate('${BERTH_TEST_LEAK}', () => undefined)).toEqual({ value: '' });
      expect(serviceOf('services:\n  w:\n    image: x:${BERTH_TEST_LEAK:-none}\n').image).toBe('x:none');
    } finally {
      delete process.env.BERTH_TEST_LEAK;
    }
  });
});

describe('interpolation in compose files', () => {
  test('values come from the .env next to the first compose file; keys are not interpolated', () => {
    const s = serviceOf('services:\n  web:\n    image: "nginx:${TAG}"\n    environment:\n      $KEY: "${TAG}-$$HOME"\n', {
      'app/.env': 'TAG=1.27\nKEY=ignored\n',
    });
    expect(s.image).toBe('nginx:1.27');
    expect(s.environment).toEqual({ $KEY: '1.27-$HOME' });
  });

  test('a :? error points at its scalar', () => {
    expect(errorsOf({ 'app/compose.yaml': 'services:\n  web:\n    image: x\n    environment:\n      PW: ${DB_PW:?set DB_PW in .env}\n' })).toEqual([
      'app/compose.yaml:5:11: services.web.environment.PW: required variable DB_PW is missing a value: set DB_PW in .env',
    ]);
  });

  test('an invalid template inside a list is located', () => {
    expect(errorsOf({ 'app/compose.yaml': 'services:\n  web:\n    image: x\n    command: [sh, -c, "echo $1"]\n' })).toEqual([
      `app/compose.yaml:4:23: services.web.command[2]: ${BAD_DOLLAR}`,
    ]);
  });

  test('.env errors are located in .env', () => {
    expect(errorsOf({ 'app/compose.yaml': 'services:\n  web:\n    image: x\n', 'app/.env': 'OK=1\nnot a line\n' })).toEqual([
      'app/.env:2:1: expected KEY=value',
    ]);
  });
});

describe('dotenv', () => {
  test.each([
    ['A=1\nB=two words\n', { A: '1', B: 'two words' }],
    ['# comment\n\n  export A=1\n', { A: '1' }],
    ['A=1 # comment\nB=a#b\n', { A: '1', B: 'a#b' }],
    ["A='x $B \\n' # c\n", { A: 'x $B \\n' }],
    ['A="l1\\nl2 \\"q\\" \\$X"\n', { A: 'l1\nl2 "q" $X' }],
    ['A="multi\nline"\nB=2', { A: 'multi\nline', B: '2' }],
    ["A='multi\nline'", { A: 'multi\nline' }],
    ['A=1\nB=${A}2\nC="${A}3"\nD=\'${A}\'', { A: '1', B: '12', C: '13', D: '${A}' }],
    ['A=${OUTER:-d}', { A: 'from lookup' }],
    ['A=', { A: '' }],
    ['BARE\nA=1', { A: '1' }],
    ['A=1\r\nB=2\r\n', { A: '1', B: '2' }],
    ['A = spaced ', { A: 'spaced' }],
    ['a.b-c=1', { 'a.b-c': '1' }],
    ['A=1\nA=2', { A: '2' }],
  ])('%j', (text, expected) => {
    const { vars: parsed, errors } = parseDotenv(text, (n) => (n === 'OUTER' ? 'from lookup' : undefined));
    expect(errors).toEqual([]);
    expect(Object.fromEntries(parsed)).toEqual(expected);
  });

  test.each([
    ['1A=x', [{ line: 1, col: 1, message: 'expected KEY=value' }]],
    ['A=1\nB="open\n', [{ line: 2, col: 3, message: 'B: the double quote is never closed' }]],
    ["A='open", [{ line: 1, col: 3, message: 'A: the single quote is never closed' }]],
    ['A="x" y', [{ line: 1, col: 7, message: 'A: unexpected text after the value' }]],
    ['A=${B:?need B}', [{ line: 1, col: 3, message: 'A: required variable B is missing a value: need B' }]],
  ])('%j fails', (text, errors) => {
    expect(parseDotenv(text).errors).toEqual(errors);
  });
});
