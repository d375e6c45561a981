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
  test.each<[string, string, Partial<RepoPolicy>, unknown[]]>([
    ['privileged', 'privileged: true', { privileged: true }, [`app/compose.yaml:4:17: services.web.privileged: a privileged container ${PRIV}`]],
    [
      "capabilities beyond Docker's default set",
      'cap_add: [NET_ADMIN, SYS_ADMIN, cap_sys_module, ALL, CHOWN, NET_BIND_SERVICE]',
      { capabilities: ['net_admin', 'SYS_ADMIN', 'CAP_SYS_MODULE', 'ALL'] },
      [
        `app/compose.yaml:4:15: services.web.cap_add[0]: the capability NET_ADMIN (not in Docker's default set) ${allowedWith('policy.capabilities: ["NET_ADMIN"]')}`,
        `app/compose.yaml:4:26: services.web.cap_add[1]: the capability SYS_ADMIN (it opens the host) ${allowedWith('policy.capabilities: ["SYS_ADMIN"]')}`,
        `app/compose.yaml:4:37: services.web.cap_add[2]: the capability SYS_MODULE (it opens the host) ${allowedWith('policy.capabilities: ["SYS_MODULE"]')}`,
        `app/compose.yaml:4:53: services.web.cap_add[3]: the capability ALL (it opens the host) ${allowedWith('policy.capabilities: ["ALL"]')}`,
      ],
    ],
    ['every capability, by ALL', 'cap_add: [SYS_TIME, BPF]', { capabilities: ['ALL'] }, [expect.stringContaining('SYS_TIME'), expect.stringContaining('BPF')]],
    [
      'every capability, by privileged',
      'cap_add: [SYS_TIME, ALL]',
      { privileged: true },
      [expect.stringContaining('SYS_TIME'), expect.stringContaining('ALL')],
    ],
    [
      'devices',
      'devices: ["/dev/sda:/dev/xvda"]',
      { devices: true },
      [`app/compose.yaml:4:15: services.web.devices[0]: the host device /dev/sda ${allowedWith('policy.devices: true')}`],
    ],
    ['devices, by privileged', 'devices: ["/dev/sda:/dev/xvda"]', { privileged: true }, [expect.stringContaining('policy.devices: true')]],
    [
      'device cgroup rules',
      "device_cgroup_rules: ['c *:* rwm']",
      { devices: true },
      [`app/compose.yaml:4:27: services.web.device_cgroup_rules[0]: the device cgroup rule 'c *:* rwm' ${allowedWith('policy.devices: true')}`],
    ],
    ['GPUs', 'gpus: all\n', { devices: true }, [`app/compose.yaml:4:11: services.web.gpus: the host's GPUs ${allowedWith('policy.devices: true')}`]],
    [
      'security options that loosen confinement',
      'security_opt: [seccomp=unconfined, "apparmor:unconfined", label=disable, "label=type:spc_t", "label:level:s0:c1", systempaths=unconfined, "no-new-privileges:false"]',
      {
        securityOpt: [
          'seccomp:unconfined',
          'apparmor=unconfined',
          'label=disable',
          'label=type:*',
          'label=level:s0:c1',
          'systempaths=unconfined',
          'no-new-privileges=false',
        ],
      },
      [
        `app/compose.yaml:4:20: services.web.security_opt[0]: the security option seccomp=unconfined (confinement off) ${allowedWith('policy.securityOpt: ["seccomp=unconfined"]')}`,
        `app/compose.yaml:4:40: services.web.security_opt[1]: the security option apparmor:unconfined (confinement off) ${allowedWith('policy.securityOpt: ["apparmor:unconfined"]')}`,
        `app/compose.yaml:4:63: services.web.security_opt[2]: the security option label=disable (confinement off) ${allowedWith('policy.securityOpt: ["label=disable"]')}`,
        `app/compose.yaml:4:78: services.web.security_opt[3]: the security option label=type:spc_t ${allowedWith('policy.securityOpt: ["label=type:spc_t"]')}`,
        `app/compose.yaml:4:98: services.web.security_opt[4]: the security option label:level:s0:c1 ${allowedWith('policy.securityOpt: ["label:level:s0:c1"]')}`,
        `app/compose.yaml:4:119: services.web.security_opt[5]: the security option systempaths=unconfined (confinement off) ${allowedWith('policy.securityOpt: ["systempaths=unconfined"]')}`,
        `app/compose.yaml:4:143: services.web.security_opt[6]: the security option no-new-privileges:false ${allowedWith('policy.securityOpt: ["no-new-privileges:false"]')}`,
      ],
    ],
    ['security options, by privileged', 'security_opt: [seccomp=unconfined, label=disable]', { privileged: true }, [expect.any(String), expect.any(String)]],
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
    [
      'a cgroup parent',
      'cgroup_parent: system.slice',
      { cgroupParent: true },
      [`app/compose.yaml:4:20: services.web.cgroup_parent: the cgroup parent system.slice ${allowedWith('policy.cgroupParent: true')}`],
    ],
    [
      'OOM protection',
      'oom_score_adj: -500\noom_kill_disable: true',
      { oom: true },
      [
        `app/compose.yaml:4:20: services.web.oom_score_adj: an OOM score adjustment below 0 (-500: the host's OOM killer would spare it) ${allowedWith('policy.oom: true')}`,
        `app/compose.yaml:5:23: services.web.oom_kill_disable: switching the OOM killer off ${allowedWith('policy.oom: true')}`,
      ],
    ],
    [
      'a runtime (even runc: a host may default to a sandbox)',
      'runtime: runc',
      { runtimes: ['runc'] },
      [`app/compose.yaml:4:14: services.web.runtime: the runtime runc ${allowedWith('policy.runtimes: ["runc"]')}`],
    ],
    [
      'sysctls outside the safe set',
      'sysctls: { kernel.msgmax: 65536, net.core.somaxconn: 1024, kernel.shm_rmid_forced: 1, vm.overcommit_memory: 1 }',
      { sysctls: ['kernel.msgmax', 'vm.*'] },
      [
        `app/compose.yaml:4:16: services.web.sysctls.kernel.msgmax: the sysctl kernel.msgmax ${allowedWith('policy.sysctls: ["kernel.msgmax"]')}`,
        `app/compose.yaml:4:91: services.web.sysctls.vm.overcommit_memory: the sysctl vm.overcommit_memory ${allowedWith('policy.sysctls: ["vm.overcommit_memory"]')}`,
      ],
    ],
    [
      "network sysctls in another container's namespace",
      'network_mode: container:db\nsysctls: ["net.ipv4.tcp_syncookies=1", "net/ipv4/ip_forward=1"]',
      { joinContainers: ['db'], sysctls: ['net.ipv4.*'] },
      [
        expect.stringContaining('policy.joinContainers'),
        `app/compose.yaml:5:15: services.web.sysctls[0]: the sysctl net.ipv4.tcp_syncookies (not in a namespace of its own with network_mode: container:db) ${allowedWith('policy.sysctls: ["net.ipv4.tcp_syncookies"]')}`,
        `app/compose.yaml:5:44: services.web.sysctls[1]: the sysctl net/ipv4/ip_forward (not in a namespace of its own with network_mode: container:db) ${allowedWith('policy.sysctls: ["net.ipv4.ip_forward"]')}`,
      ],
    ],
    [
      'a log driver that sends the logs elsewhere',
      'logging: { driver: syslog, options: { syslog-address: "tcp://10.0.0.1:514" } }',
      { logDrivers: ['syslog'] },
      [`app/compose.yaml:4:16: services.web.logging.driver: the log driver syslog ${allowedWith('policy.logDrivers: ["syslog"]')}`],
    ],
    [
      'annotations',
      'annotations: { io.katacontainers.config.hypervisor.kernel_params: "x" }',
      { annotations: true },
      [
        `app/compose.yaml:4:20: services.web.annotations.io.katacontainers.config.hypervisor.kernel_params: the annotation io.katacontainers.config.hypervisor.kernel_params ${allowedWith('policy.annotations: true')}`,
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
    // NET_ADMIN used to pass here: it is beyond Docker's default capabilities, so it now needs policy.capabilities
    expect(
      errorsOf(
        web(
          [
            'cap_add: [CHOWN, NET_BIND_SERVICE]',
            'cap_drop: [ALL]',
            'privileged: false',
            'ipc: shareable',
            'volumes: [data:/data, { type: tmpfs, target: /tmp }]',
            'security_opt: [no-new-privileges:true, no-new-privileges, "apparmor=my-profile"]',
            'sysctls: { net.ipv4.ip_unprivileged_port_start: 80, net.core.somaxconn: 1024, kernel.shm_rmid_forced: 1 }',
            'logging: { driver: local, options: { max-size: 10m } }',
            'oom_score_adj: 500',
            'oom_kill_disable: false',
          ].join('\n'),
        ),
        {},
      ),
    ).toEqual(["app/compose.yaml:8:15: services.web.volumes[0]: volume 'data' is not declared under the top-level volumes:"]);
  });

  test('a setting allows only what it lists', () => {
    expect(errorsOf(web('cap_add: [NET_ADMIN, SYS_TIME]'), { policy: { ...STRICT, capabilities: ['NET_ADMIN'] } })).toEqual([
      `app/compose.yaml:4:26: services.web.cap_add[1]: the capability SYS_TIME (not in Docker's default set) ${allowedWith('policy.capabilities: ["SYS_TIME"]')}`,
    ]);
    expect(errorsOf(web('logging: { driver: gelf }'), { policy: { ...STRICT, logDrivers: ['syslog'] } })).toEqual([
      `app/compose.yaml:4:16: services.web.logging.driver: the log driver gelf ${allowedWith('policy.logDrivers: ["gelf"]')}`,
    ]);
  });

  test('a sysctl, an annotation or a log driver merged from another file is located where it was written', () => {
    expect(
      errorsOf({
        'berth.yaml': 'stacks:\n  - name: app\n    compose: [app/compose.yaml, app/override.yaml]\n',
        'app/compose.yaml':
          'services:\n  web:\n    image: x\n    sysctls: { kernel.sem: "1 2 3 4" }\n    logging: { driver: fluentd }\n    annotations: { a: "1" }\n',
        'app/override.yaml': 'services:\n  web:\n    sysctls: { net.core.somaxconn: 1 }\n    logging: { options: { tag: x } }\n    annotations: { b: "2" }\n',
      }),
    ).toEqual([
      `app/compose.yaml:4:16: services.web.sysctls.kernel.sem: the sysctl kernel.sem ${allowedWith('policy.sysctls: ["kernel.sem"]')}`,
      `app/compose.yaml:5:16: services.web.logging.driver: the log driver fluentd ${allowedWith('policy.logDrivers: ["fluentd"]')}`,
      `app/compose.yaml:6:20: services.web.annotations.a: the annotation a ${allowedWith('policy.annotations: true')}`,
      `app/override.yaml:5:20: services.web.annotations.b: the annotation b ${allowedWith('policy.annotations: true')}`,
    ]);
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
