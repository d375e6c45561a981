// Test certificates made with openssl: a CA, a server certificate for the given addresses, and a
// client certificate (for mutual TLS), all signed by that CA.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCerts {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    throw new Error(`openssl ${args[0]} failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * Makes the files in `dir` (created if needed); the server certificate is valid for `ips` and
 * `names`. Keys are RSA unless `keyType` is `ec` (P-256), which is made in a tenth of the time.
 */
export async function makeCerts(
  dir: string,
  { ips = ['127.0.0.1'], names = ['localhost'], keyType = 'rsa' }: { ips?: string[]; names?: string[]; keyType?: 'rsa' | 'ec' } = {},
): Promise<TestCerts> {
  await mkdir(dir, { recursive: true });
  const days = ['-days', '2'];
  const newKey = keyType === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  await openssl(['req', '-x509', ...newKey, '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-subj', '/CN=berth test CA', ...days], dir);
  const sign = async (name: string, ext: string) => {
    await writeFile(join(dir, `${name}.ext`), ext);
    await openssl(['req', ...newKey, '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=berth test ${name}`], dir);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca-key.pem',
        '-CAcreateserial',
        '-out',
        `${name}.pem`,
        '-extfile',
        `${name}.ext`,
        ...days,
      ],
      dir,
    );
  };
  const san = [...ips.map((ip) => `IP:${ip}`), ...names.map((n) => `DNS:${n}`)].join(',');
  await sign('server', `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  await sign('client', 'extendedKeyUsage=clientAuth\n');
  const at = (f: string) => join(dir, f);
  return { ca: at('ca.pem'), serverCert: at('server.pem'), serverKey: at('server-key.pem'), clientCert: at('client.pem'), clientKey: at('client-key.pem') };
}
