import { describe, expect, test } from 'vitest';
import { parseBytes, parseDuration, shellSplit, toBool, toInt, toNumber } from '../../src/render/values.ts';
import { port } from '../../src/render/normalize.ts';
import { formatError } from '../../src/render/index.ts';

describe('shellSplit', () => {
  test.each<[string, string[] | undefined]>([
    ['', []],
    ['  a   b\tc ', ['a', 'b', 'c']],
    [`sh -c 'echo "$X"; exit 1'`, ['sh', '-c', 'echo "$X"; exit 1']],
    ['echo "a \\"b\\" \\\\ \\n"', ['echo', 'a "b" \\ \\n']],
    ['a\\ b c', ['a b', 'c']],
    ["''", ['']],
    ['x"y"z\'w\'', ['xyzw']],
    ['a && b | c', ['a', '&&', 'b', '|', 'c']],
    ['a \\\n b', ['a', 'b']],
    ['"open', undefined],
    ["'open", undefined],
  ])('%j', (input, words) => {
    expect(shellSplit(input)).toEqual(words);
  });
});

describe('parseDuration', () => {
  test.each<[string, number | undefined]>([
    ['0', 0],
    ['30s', 30e9],
    ['1m30s', 90e9],
    ['500ms', 500e6],
    ['1.5h', 5400e9],
    ['2h45m', 9900e9],
    ['10us', 10e3],
    ['7ns', 7],
    ['.5s', 500e6],
    ['', undefined],
    ['10', undefined],
    ['1 s', undefined],
    ['1d', undefined],
    ['-1s', undefined],
  ])('%j', (input, ns) => {
    expect(parseDuration(input)).toBe(ns);
  });
});

test.each<[unknown, number | undefined]>([
  [3, 3],
  ['3', 3],
  [' 4 ', 4],
  [1.5, undefined],
  ['x', undefined],
  [null, undefined],
])('toInt(%j)', (v, n) => {
  expect(toInt(v)).toBe(n);
});

test.each<[unknown, number | undefined]>([
  [0.5, 0.5],
  ['0.5', 0.5],
  ['.5', 0.5],
  [' 2 ', 2],
  ['1.', 1],
  ['-1', -1],
  ['1e3', undefined],
  ['x', undefined],
  ['', undefined],
  [Infinity, undefined],
  [null, undefined],
])('toNumber(%j)', (v, n) => {
  expect(toNumber(v)).toBe(n);
});

describe('parseBytes', () => {
  test.each<[string, number | undefined]>([
    ['1048576', 1048576],
    ['100b', 100],
    ['1024k', 1024 ** 2],
    ['512m', 512 * 1024 ** 2],
    ['512M', 512 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['1gb', 1024 ** 3],
    ['1GiB', 1024 ** 3],
    ['1 g', 1024 ** 3],
    ['1.5k', 1536],
    ['1t', 1024 ** 4],
    ['0', 0],
    ['', undefined],
    ['1x', undefined],
    ['-1m', undefined],
    ['1  g', undefined],
    ['m', undefined],
  ])('%j', (input, bytes) => {
    expect(parseBytes(input)).toBe(bytes);
  });
});

test.each<[unknown, boolean | undefined]>([
  [true, true],
  ['false', false],
  ['TRUE', true],
  ['yes', undefined],
  [1, undefined],
])('toBool(%j)', (v, b) => {
  expect(toBool(v)).toBe(b);
});

describe('port', () => {
  test.each<[unknown, unknown]>([
    ['80/udp', [{ target: 80, protocol: 'udp' }]],
    ['::1:8080:80', [{ target: 80, published: '8080', hostIp: '::1', protocol: 'tcp' }]],
    ['80/http', "'80/http' is not a port mapping ([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])"],
    ['0:80', "'0:80' is not a port mapping ([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])"],
    ['80-79', "'80-79' is not a port mapping ([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])"],
    ['8080:80-81', "'8080:80-81': the host and container port ranges must be the same length"],
    [{ target: 80, published: '8000-8005' }, [{ target: 80, published: '8000-8005', protocol: 'tcp' }]],
    [{ target: 80, protocol: 'icmp' }, "protocol must be tcp, udp or sctp, not 'icmp'"],
    [{ published: 80 }, 'target must be a port number'],
  ])('%j', (input, expected) => {
    expect(port(input)).toEqual(expected);
  });
});

test('formatError', () => {
  expect(formatError({ file: 'a/compose.yaml', line: 3, col: 5, message: 'm' })).toBe('a/compose.yaml:3:5: m');
  expect(formatError({ file: 'a/compose.yaml', line: 0, col: 0, message: 'm' })).toBe('a/compose.yaml: m');
});
