// The address check before the model loads: a taken port should cost a second, not a model load,
// and reach the user as a QtkError naming host:port, not as a Node stack trace.
import { createServer } from 'node:net';
import { QtkError } from '@qtk/core';

/** `host:port`, with IPv6 hosts in brackets as URLs write them. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function validatePort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new QtkError(`--port ${port}: expected an integer from 0 to 65535 (0 picks a free port). Pass e.g. --port 8080.`);
}

/** Translates a listen() failure into a QtkError that says what to do; other errors pass through. */
export function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = hostPort(host, port);
  switch (code) {
    case 'EADDRINUSE':
      return new QtkError(`${where} is already in use by another process. Choose another --port, or stop the process listening there (e.g. \`ss -ltnp 'sport = :${port}'\` shows it).`, { cause: err });
    case 'EACCES':
      return new QtkError(`${where}: permission denied to listen there (ports below 1024 need elevated privileges). Choose another --port, e.g. --port 8080.`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new QtkError(`${where}: the address ${host} does not belong to this machine. Pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (all interfaces).`, { cause: err });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new QtkError(`${where}: the host name ${host} cannot be resolved. Pass an IP address such as --host 127.0.0.1 or --host 0.0.0.0.`, { cause: err });
    default:
      return err;
  }
}

/** Binds host:port for a moment and lets it go, so a bad address fails before the model loads.
 *  With port 0 this checks the host only; a process that takes the port in between still gets listenError. */
export async function checkAddress(host: string, port: number): Promise<void> {
  validatePort(port);
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err) => reject(listenError(err, host, port)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
