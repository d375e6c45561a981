// The repo policy: what a repo's Compose files may ask of the hosts beyond an ordinary container.
import { describe, expect, test } from 'vitest';
import type { RepoPolicy } from '../../src/model.ts';
import { bindAllowed } from '../../src/render/policy.ts';
import { errorsOf } from './helpers.ts';

const STRICT: RepoPolicy = { privileged: false, hostNetwork: false, hostNamespaces: false, bindMounts: [] };
const web = (body: string) => ({ 'app/compose.yaml': `services:\n  web:\n    image: nginx\n${body.replace(/^/gm, '    ')}\n` });
const allowedWith = (setting: string) => `is not allowed for this repo: allow it with ${setting} on the repo in berth's config`;
const PRIV = allowedWith('policy.privileged: true');

describe('refused by the default policy, with the setting that allows it', () => {
  test.each<[string, string, Partial<RepoPolicy>, string[]]>([
    ['privileged', 'privileged: true', { privileged: true }, [`app/compose.yaml:4:17: services.web.privileged: a privileged container ${PRIV}`]],
    [
      'capabilities that open the host',
      'cap_add: [NET_ADMIN, SYS_ADMIN, cap_sys_module, ALL]',
      { privileged: true },
      [
        `app/compose.yaml:4:26: services.web.cap_add[1]: the capability SYS_ADMIN (it opens the host) ${PRIV}`,
        `app/compose.yaml:4:37: services.web.cap_add[2]: the capability SYS_MODULE (it opens the host) ${PRIV}`,
        `app/compose.yaml:4:53: services.web.cap_add[3]: the capability ALL (it opens the host) ${PRIV}`,
      ],
    ],
    ['devices', 'devices: ["/dev/sda:/dev/xvda"]', { privileged: true }, [`app/compose.yaml:4:15: services.web.devices[0]: the host device /dev/sda ${PRIV}`]],
    [
      'device cgroup rules',
      "device_cgroup_rules: ['c *:* rwm']",
      { privileged: true },
      [`app/compose.yaml:4:27: services.web.device_cgroup_rules[0]: the device cgroup rule 'c *:* rwm' ${PRIV}`],
    ],
    [
      'confinement off',
      'security_opt: [seccomp=unconfined, "apparmor:unconfined", label=disable, no-new-privileges]',
      { privileged: true },
      [
        `app/compose.yaml:4:20: services.web.security_opt[0]: seccomp=unconfined (confinement off) ${PRIV}`,
        `app/compose.yaml:4:40: services.web.security_opt[1]: apparmor:unconfined (confinement off) ${PRIV}`,
        `app/compose.yaml:4:63: services.web.security_opt[2]: label=disable (confinement off) ${PRIV}`,
      ],
    ],
    [
      'the host network',
      'network_mode: host',
      { hostNetwork: true },
      [`app/compose.yaml:4:19: services.web.network_mode: the host's network ${allowedWith('policy.hostNetwork: true')}`],
    ],
    [
      "a build on the host's network",
      'build: { context: ., dockerfile_inline: "FROM x", network: host }',
      { hostNetwork: true },
      [`app/compose.yaml:4:64: services.web.build.network: a build on the host's network ${allowedWith('policy.hostNetwork: true')}`],
    ],
    [
      'host namespaces',
      'pid: host\nipc: host\nuts: host\nuserns_mode: host\ncgroup: host',
      { hostNamespaces: true },
      [
        `app/compose.yaml:4:10: services.web.pid: the host's pid namespace ${allowedWith('policy.hostNamespaces: true')}`,
        `app/compose.yaml:5:10: services.web.ipc: the host's ipc namespace ${allowedWith('policy.hostNamespaces: true')}`,
        `app/compose.yaml:6:10: services.web.uts: the host's uts namespace ${allowedWith('policy.hostNamespaces: true')}`,
        `app/compose.yaml:7:18: services.web.userns_mode: the host's user namespace ${allowedWith('policy.hostNamespaces: true')}`,
        `app/compose.yaml:8:13: services.web.cgroup: the host's cgroup namespace ${allowedWith('policy.hostNamespaces: true')}`,
      ],
    ],
    [
      'bind mounts',
      'volumes: [/var/run/docker.sock:/var/run/docker.sock, { type: bind, source: /srv/app/../../etc, target: /etc2 }]',
      { bindMounts: ['/var/run/docker.sock', '/etc'] },
      [
        `app/compose.yaml:4:15: services.web.volumes[0]: a bind mount of /var/run/docker.sock ${allowedWith('policy.bindMounts: ["/var/run/docker.sock"] (or a folder above it)')}`,
        `app/compose.yaml:4:58: services.web.volumes[1]: a bind mount of /etc ${allowedWith('policy.bindMounts: ["/etc"] (or a folder above it)')}`,
      ],
    ],
    [
      "another container's namespaces",
      'network_mode: container:billing-db-1\npid: container:berth\nipc: "container:x"',
      { joinContainers: ['billing-*', 'berth', 'x'] },
      [
        `app/compose.yaml:4:19: services.web.network_mode: joining the network namespace of the container billing-db-1 (a service of this stack: network_mode: service:NAME) ${allowedWith('policy.joinContainers: ["billing-db-1"]')}`,
        `app/compose.yaml:5:10: services.web.pid: joining the PID namespace of the container berth ${allowedWith('policy.joinContainers: ["berth"]')}`,
        `app/compose.yaml:6:10: services.web.ipc: joining the IPC namespace of the container x ${allowedWith('policy.joinContainers: ["x"]')}`,
      ],
    ],
  ])('%s', (_, body, allowing, refusals) => {
    expect(errorsOf(web(body))).toEqual(refusals);
    expect(errorsOf(web(body), { policy: { ...STRICT, ...allowing } })).toEqual([]);
  });

  test('a policy setting allows only its own things', () => {
    expect(errorsOf(web('privileged: true\nnetwork_mode: host'), { policy: { ...STRICT, privileged: true } })).toEqual([
      `app/compose.yaml:5:19: services.web.network_mode: the host's network ${allowedWith('policy.hostNetwork: true')}`,
    ]);
  });

  test('what an ordinary container may have needs no policy', () => {
    expect(
      errorsOf(
        web(
          'cap_add: [NET_ADMIN, CHOWN]\nprivileged: false\nipc: shareable\nvolumes: [data:/data, { type: tmpfs, target: /tmp }]\nsecurity_opt: [no-new-privileges:true]',
        ),
        {},
      ),
    ).toEqual(["app/compose.yaml:7:15: services.web.volumes[0]: volume 'data' is not declared under the top-level volumes:"]);
  });

  test('a key merged in from another file or a base service is checked where it was written', () => {
    expect(
      errorsOf({
        'app/compose.yaml': 'services:\n  web:\n    extends: { file: base.yaml, service: base }\n',
        'app/base.yaml': 'services:\n  base:\n    image: x\n    privileged: true\n',
      }),
    ).toEqual([`app/base.yaml:4:17: services.base.privileged: a privileged container ${PRIV}`]);
  });
});

describe("berth's own labels", () => {
  test('a label under berth. is refused where it is written, on a service, a network or a volume', () => {
    const files = {
      'app/compose.yaml':
        'services:\n  web:\n    image: x\n    labels: { berth.reserve.memory: "0", team: a }\n  job:\n    image: x\n    labels: ["berth.files=[]", "berth.job=schedule"]\nnetworks:\n  n:\n    labels: { berth.repo: other }\n',
    };
    expect(errorsOf(files)).toEqual([
      `app/compose.yaml:4:15: services.web.labels.berth.reserve.memory: the label berth.reserve.memory is reserved: berth sets the labels under berth. itself (docs/how-it-works.md, "On the hosts")`,
      `app/compose.yaml:7:14: services.job.labels[0]: the label berth.files is reserved: berth sets the labels under berth. itself (docs/how-it-works.md, "On the hosts")`,
      `app/compose.yaml:7:32: services.job.labels[1]: the label berth.job is reserved: berth sets the labels under berth. itself (docs/how-it-works.md, "On the hosts")`,
      `app/compose.yaml:10:15: networks.n.labels.berth.repo: the label berth.repo is reserved: berth sets the labels under berth. itself (docs/how-it-works.md, "On the hosts")`,
    ]);
  });
});

describe('bind mount prefixes', () => {
  test.each<[string, string[], boolean]>([
    ['/srv/app/data', ['/srv/'], true],
    ['/srv/app/data', ['/srv'], true],
    ['/srv', ['/srv/'], true],
    ['/srvx', ['/srv'], false],
    ['/srv/../etc', ['/srv/'], false],
    ['/var/run/docker.sock', ['/var/run/docker.sock'], true],
    ['/var/run/docker.sock.bak', ['/var/run/docker.sock'], false],
    ['/anything', ['/'], true],
    ['/etc', [], false],
    ['/data/x', ['/srv/', '/data'], true],
  ])('%s under %j: %s', (source, prefixes, allowed) => {
    expect(bindAllowed(source, prefixes)).toBe(allowed);
  });
});
