// A TCP front for a test daemon's unix socket that can be made to stop answering.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

/**
 * A TCP front for a daemon's unix socket that can stop answering: `stop()` closes it (connections
 * are refused), `hang()` accepts connections but never answers, `resume()` forwards again, on the same port.
 */
export async function proxyTo(socketPath: string) {
  const open = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async (mode: 'forward' | 'hang') => {
    server = createServer((client) => {
      open.add(client);
      client.on('close', () => open.delete(client));
      client.on('error', () => client.destroy());
      if (mode === 'hang') return;
      const upstream = netConnect(socketPath);
      open.add(upstream);
      upstream.on('close', () => open.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const socket of open) socket.destroy();
    if (s) await new Promise((resolve) => s.close(resolve));
  };
  await listen('forward');
  return {
    port,
    stop,
    resume: async () => { await stop(); await listen('forward'); },
    hang: async () => { await stop(); await listen('hang'); },
  };
}

