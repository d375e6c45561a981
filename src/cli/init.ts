/**
 * The starter engine config `berth init` writes: the local Docker socket as the one host, the
 * repo given with `--repo` (if any), no API tokens (so the API listens on loopback only), each key
 * said in a comment, the rest left to docs/config.md. Pure: the text, from plain data.
 */

/** The repo `berth init --repo URL [--branch B]` puts in the starter config. */
export interface StarterRepo {
  name: string;
  url: string;
  branch: string;
}

/**
 * The repo's name in the config from its URL or path: its last segment without `.git`, as the
 * stack of a Compose file at its root will be named when the file has no `name:` (so kept to what
 * a stack name may be: lower-case letters, digits, `_` and `-`, other characters made `-`).
 */
export function repoNameOf(url: string): string {
  const last =
    url
      .replace(/[?#].*$/, '')
      .replace(/\/+$/, '')
      .split(/[/:\\]/)
      .pop() ?? '';
  const name = last
    .replace(/\.git$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|-+$/g, '');
  return name || 'app';
}

/** A value as YAML reads it back: plain when that is safe, else double-quoted (JSON's quoting is YAML's). */
function scalar(value: string): string {
  return /^[\w./@-][\w./@:+-]*$/.test(value) && !/^(true|false|null|yes|no|on|off|~)$/i.test(value) && !/:\s/.test(value) ? value : JSON.stringify(value);
}

/** The starter config's text; `keyFile` is its auditKeyFile as written (relative to the config, or absolute). */
export function starterConfig({ repo, keyFile }: { repo?: StarterRepo; keyFile: string }): string {
  const repos = repo
    ? [
        'repos:                           # the Git repos whose Compose files berth runs on the hosts',
        "  # The name is on every container as berth.repo. A Compose file at the repo's root without a",
        '  # top-level name: is deployed as the stack of this name (docs/manifests.md, "Which stacks").',
        `  - name: ${scalar(repo.name)}`,
        `    url: ${scalar(repo.url)}`,
        `    branch: ${scalar(repo.branch)}`,
        '    poll: 1m                     # how often berth looks at the branch (an interval, or a cron expression)',
        '    # path: deploy/               # only this folder of the repo',
        '    # auth: { tokenFile: /run/secrets/git-token }   # a private repo over https: a token with read access',
        '    # webhookSecretFile: /run/secrets/hook           # take push webhooks at /webhooks/:provider (docs/config.md, "Webhooks")',
        '    # policy: { bindMounts: [/srv/] }                # what its Compose files may ask of the hosts beyond an ordinary container',
      ]
    : [
        'repos: []',
        '# repos:                         # the Git repos berth converges the hosts to',
        '#   - name: platform',
        '#     url: https://git.example.com/org/platform.git   # or a local path to a git repo',
        '#     branch: main',
        '#     poll: 3m',
        '#     auth: { tokenFile: /run/secrets/git-token }',
      ];
  return [
    "# berth's engine config (docs/config.md has every key). Relative paths are relative to this file.",
    'dataDir: ./data                  # the database (berth.db) and the git cache',
    '# The API, the dashboard, /metrics and the webhooks. With no auth.tokens below, berth listens',
    '# on loopback only: every local program may drive it, nothing else can reach it.',
    'listen: 127.0.0.1:8080',
    '# auth: { tokens: [{ name: ci, role: operator, tokenFile: /run/secrets/berth-ci }] }',
    "# The key that signs the audit log's checkpoints (berth init made it). Whoever can read it can sign",
    '# checkpoints: keep it off the disk the database is on, and its .pub file somewhere else too',
    '# (docs/how-it-works.md, "The audit log").',
    `auditKeyFile: ${scalar(keyFile)}`,
    '# auditAnchorFile: /mnt/other-disk/berth-anchors.jsonl   # optional: each checkpoint appended here too',
    'hosts:                           # the Docker hosts berth runs containers on',
    '  - name: local',
    '    endpoint: unix:///var/run/docker.sock',
    '  # - { name: edge-1, endpoint: "ssh://deploy@10.0.0.6", ssh: { keyFile: keys/berth_ed25519 } }',
    ...repos,
    '',
  ].join('\n');
}
