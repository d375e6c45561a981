// A network's ipam and enable_ipv6, and a service's fixed addresses on it (ipv4_address,
// ipv6_address, link_local_ips), rendered (pure): into the network's spec and the container's
// endpoints, each refusal located at its key.
import { describe, expect, test } from 'vitest';
import { networkConfig } from '../../src/model.ts';
import { placeStack } from '../../src/schedule/place.ts';
import { errorsOf, stackOf } from './helpers.ts';

const IPAM = 'networks:\n  back:\n    ipam:\n      config:\n        - subnet: 10.5.0.0/16\n';
const app = (service: string, top = IPAM) => ({ 'app/compose.yaml': `services:\n  web:\n    image: nginx\n${service.replace(/^/gm, '    ')}\n${top}` });
const fixed = (more = '', address = '10.5.0.10') => `networks:\n  back:\n    ipv4_address: ${address}\n${more}`;

describe('ipam and enable_ipv6 of a network', () => {
  test('become the network spec, every key of Compose', () => {
    const top = [
      'networks:',
      '  back:',
      '    enable_ipv6: true',
      '    ipam:',
      '      driver: default',
      '      config:',
      '        - subnet: 10.5.0.0/16',
      '          ip_range: 10.5.1.0/24',
      '          gateway: 10.5.0.1',
      '          aux_addresses: { router: 10.5.0.2, host2: 10.5.0.3 }',
      '        - subnet: fd00:5::/64',
      '      options: { foo: bar }',
      '',
    ].join('\n');
    const stack = stackOf(app('networks: [back]', top), 'app');
    expect(stack.networks.find((n) => n.key === 'back')).toEqual({
      key: 'back',
      name: 'app_back',
      external: false,
      labels: {},
      enableIpv6: true,
      ipam: {
        driver: 'default',
        config: [
          { subnet: '10.5.0.0/16', ipRange: '10.5.1.0/24', gateway: '10.5.0.1', auxAddresses: { host2: '10.5.0.3', router: '10.5.0.2' } },
          { subnet: 'fd00:5::/64' },
        ],
        options: { foo: 'bar' },
      },
    });
  });

  test('what berth keeps of them on the network is the same whatever order the maps were written in, and nothing when neither is set', () => {
    const a = stackOf(
      app('networks: [back]', 'networks:\n  back:\n    ipam: { config: [{ subnet: 10.5.0.0/16, aux_addresses: { a: 10.5.0.2, b: 10.5.0.3 } }] }\n'),
      'app',
    );
    const b = stackOf(
      app('networks: [back]', 'networks:\n  back:\n    ipam: { config: [{ aux_addresses: { b: 10.5.0.3, a: 10.5.0.2 }, subnet: 10.5.0.0/16 }] }\n'),
      'app',
    );
    const config = networkConfig(a.networks.find((n) => n.key === 'back')!);
    expect(config).toBe('{"ipam":{"config":[{"subnet":"10.5.0.0/16","auxAddresses":{"a":"10.5.0.2","b":"10.5.0.3"}}]}}');
    expect(networkConfig(b.networks.find((n) => n.key === 'back')!)).toBe(config);
    expect(networkConfig(stackOf(app('networks: [back]', 'networks:\n  back: {}\n'), 'app').networks[0]!)).toBeUndefined();
  });

  test('a later file replaces the pools, and keeps them when it gives none', () => {
    const files = {
      'berth.yaml': 'stacks:\n  - name: app\n    compose: [app/a.yaml, app/b.yaml]\n',
      'app/a.yaml': `services:\n  web:\n    image: nginx\n    networks: [back]\n${IPAM}`,
      'app/b.yaml': 'networks:\n  back:\n    ipam: { config: [{ subnet: 10.6.0.0/16 }] }\n',
    };
    expect(stackOf(files, 'app').networks.find((n) => n.key === 'back')?.ipam).toEqual({ config: [{ subnet: '10.6.0.0/16' }] });
    const keep = { ...files, 'app/b.yaml': 'networks:\n  back:\n    ipam: { driver: other }\n' };
    expect(stackOf(keep, 'app').networks.find((n) => n.key === 'back')?.ipam).toEqual({ driver: 'other', config: [{ subnet: '10.5.0.0/16' }] });
  });

  test.each([
    [
      'a subnet that is none',
      'networks:\n  back:\n    ipam: { config: [{ subnet: 10.5.0.0 }] }\n',
      "app/compose.yaml:7:32: networks.back.ipam.config[0].subnet: '10.5.0.0' is not a subnet in CIDR form (like 10.5.0.0/16 or fd00:5::/64)",
    ],
    [
      'a prefix too long',
      'networks:\n  back:\n    ipam: { config: [{ ip_range: 10.5.0.0/33 }] }\n',
      "app/compose.yaml:7:34: networks.back.ipam.config[0].ip_range: '10.5.0.0/33' is not a subnet in CIDR form (like 10.5.0.0/16 or fd00:5::/64)",
    ],
    [
      'a gateway that is no address',
      'networks:\n  back:\n    ipam: { config: [{ gateway: router }] }\n',
      "app/compose.yaml:7:33: networks.back.ipam.config[0].gateway: 'router' is not an IP address",
    ],
    [
      'enable_ipv6 that is no boolean',
      'networks:\n  back:\n    enable_ipv6: maybe\n',
      'app/compose.yaml:7:18: networks.back.enable_ipv6: must be true or false',
    ],
    ['other network keys', 'networks:\n  back:\n    internal: true\n', 'app/compose.yaml:7:5: networks.back.internal: not supported by berth yet'],
  ])('%s is refused at its key', (_, top, message) => {
    expect(errorsOf(app('networks: [back]', top))).toEqual([message]);
  });
});

describe("a service's fixed address on a network", () => {
  test('is its spec, its endpoint and its view, with one replica (the default)', () => {
    const stack = stackOf(app(`${fixed()}    aliases: [api]\n    link_local_ips: [169.254.8.8]\n`), 'app');
    expect(stack.services[0]!.networks).toEqual([{ key: 'back', aliases: ['api'], ipv4Address: '10.5.0.10', linkLocalIps: ['169.254.8.8'] }]);
    const [d] = placeStack('r', stack, [{ name: 'h1', labels: {}, state: 'up' }], 'c1', []);
    expect(d!.networks).toEqual([{ network: 'app_back', aliases: ['web', 'api'], ipv4Address: '10.5.0.10', linkLocalIps: ['169.254.8.8'] }]);
    expect(d!.view).toContain('networks:\n  - app_back (ipv4_address 10.5.0.10, link_local_ips 169.254.8.8)\n');
  });

  test('an address changes the spec hash; a service without one hashes as it did', () => {
    const place = (service: string) => placeStack('r', stackOf(app(service), 'app'), [{ name: 'h1', labels: {}, state: 'up' }], 'c1', [])[0]!;
    const plain = place('networks: [back]');
    expect(place(fixed()).specHash).not.toBe(plain.specHash);
    expect(place(fixed('', '10.5.0.11')).specHash).not.toBe(place(fixed()).specHash);
    expect(plain.networks).toEqual([{ network: 'app_back', aliases: ['web'] }]);
  });

  test('an IPv6 address on a network with an IPv6 subnet', () => {
    const top = 'networks:\n  back:\n    enable_ipv6: true\n    ipam: { config: [{ subnet: 10.5.0.0/16 }, { subnet: "fd00:5::/64" }] }\n';
    const stack = stackOf(app(`${fixed()}    ipv6_address: "fd00:5::10"\n`, top), 'app');
    expect(stack.services[0]!.networks).toEqual([{ key: 'back', aliases: [], ipv4Address: '10.5.0.10', ipv6Address: 'fd00:5::10' }]);
  });

  test('a later file replaces the address and keeps the aliases', () => {
    const files = {
      'berth.yaml': 'stacks:\n  - name: app\n    compose: [app/a.yaml, app/b.yaml]\n',
      'app/a.yaml': `services:\n  web:\n    image: nginx\n    networks:\n      back: { aliases: [api], ipv4_address: 10.5.0.10 }\n${IPAM}`,
      'app/b.yaml': 'services:\n  web:\n    networks:\n      back: { ipv4_address: 10.5.0.20 }\n',
    };
    expect(stackOf(files, 'app').services[0]!.networks).toEqual([{ key: 'back', aliases: ['api'], ipv4Address: '10.5.0.20' }]);
  });

  test('on an external network, whose subnet berth does not know', () => {
    const top = 'networks:\n  back: { external: true, name: app_shared }\n';
    expect(errorsOf(app(fixed('', '192.168.7.7'), top))).toEqual([]);
  });

  const at = (line: number, col: number) => `app/compose.yaml:${line}:${col}: services.web.networks.back.ipv4_address`;
  test.each([
    [
      'two replicas',
      fixed('deploy: { replicas: 2 }'),
      `${at(6, 9)}: a fixed address is one container's, but the service asks for 2 replicas: use one replica, or drop the address`,
    ],
    ['scale', fixed('scale: 3'), `${at(6, 9)}: a fixed address is one container's, but the service asks for 3 replicas: use one replica, or drop the address`],
    [
      'a global service',
      fixed('deploy: { mode: global }'),
      `${at(6, 9)}: a fixed address is one container's, but deploy.mode: global runs one on each host: drop the address, or run one replica`,
    ],
    [
      'start-first updates',
      fixed('deploy: { update_config: { order: start-first } }'),
      `${at(6, 9)}: cannot be used with deploy.update_config.order: start-first: the old and the new replica would need the address at once (use stop-first, the default)`,
    ],
    [
      'start-first rollbacks',
      fixed('deploy: { rollback_config: { order: start-first } }'),
      `${at(6, 9)}: cannot be used with deploy.rollback_config.order: start-first: the old and the new replica would need the address at once (use stop-first, the default)`,
    ],
    ['an address outside the subnet', fixed('', '10.6.0.10'), `${at(6, 9)}: 10.6.0.10 is not in the subnet of network 'back' (10.5.0.0/16)`],
    ['an address that is none', fixed('', '10.5.0.300'), "app/compose.yaml:6:23: services.web.networks.back.ipv4_address: '10.5.0.300' is not an IPv4 address"],
  ])('with %s is refused at the address', (_, service, message) => {
    expect(errorsOf(app(service))).toEqual([message]);
  });

  test('on a network without a subnet of its family: Docker takes an address only on a configured one', () => {
    expect(errorsOf(app('networks:\n  default:\n    ipv4_address: 172.30.0.5\n', ''))).toEqual([
      "app/compose.yaml:6:9: services.web.networks.default.ipv4_address: network 'default' has no IPv4 subnet: Docker gives a fixed address only on a network with a configured subnet (declare it under networks.default.ipam.config)",
    ]);
    expect(errorsOf(app('networks:\n  back:\n    ipv6_address: "fd00::5"\n'))).toEqual([
      "app/compose.yaml:6:9: services.web.networks.back.ipv6_address: network 'back' has no IPv6 subnet: Docker gives a fixed address only on a network with a configured subnet (declare it under networks.back.ipam.config)",
    ]);
  });

  test('taken by another service', () => {
    const compose = `services:\n  web:\n    image: nginx\n    networks:\n      back:\n        ipv4_address: 10.5.0.10\n  api:\n    image: nginx\n    networks:\n      back:\n        ipv4_address: 10.5.0.10\n${IPAM}`;
    expect(errorsOf({ 'app/compose.yaml': compose })).toEqual([
      "app/compose.yaml:11:9: services.api.networks.back.ipv4_address: 10.5.0.10 is already the address of service 'web' on network 'back'",
    ]);
  });
});
