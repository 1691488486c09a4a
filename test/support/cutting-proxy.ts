import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from '../../shared/local/azurite.js';

/**
 * A TCP proxy in front of a database that, when armed, cuts the next connection after it has
 * relayed `bytes` from the server to the client: a connection dropped in the middle of a
 * result, as a network blip or a failover does it.
 */
export class CuttingProxy {
  connections = 0;
  cuts = 0;
  private armed: number | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<CuttingProxy> {
    const port = await freePort();
    const server = createServer();
    const proxy = new CuttingProxy(server, port);
    server.on('connection', (client) => proxy.relay(client, targetHost, targetPort));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return proxy;
  }

  /** The next connection is cut after `bytes` from the server. */
  armCut(bytes: number): void {
    this.armed = bytes;
  }

  private relay(client: Socket, host: string, port: number): void {
    this.connections++;
    const cutAfter = this.armed;
    this.armed = undefined;
    const upstream = connect({ host, port });
    this.sockets.add(client).add(upstream);
    let relayed = 0;
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      relayed += d.length;
      if (cutAfter !== undefined && relayed > cutAfter) {
        this.cuts++;
        closeBoth();
        return;
      }
      client.write(d);
    });
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
