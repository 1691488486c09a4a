import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { freePort } from '../../shared/local/azurite.js';

export interface PostgresHandle {
  /** postgres://… connection string of a real PostgreSQL engine reached over TCP. */
  url: string;
  /** True when the engine came from TIDEMARK_TEST_PG_URL rather than PGlite. */
  external: boolean;
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL engine for tests: the server named by TIDEMARK_TEST_PG_URL when set,
 * otherwise PGlite (PostgreSQL compiled to WASM) behind its socket server on a free port, so
 * the pg driver talks the real wire protocol over a real network connection.
 */
export async function startPostgres(): Promise<PostgresHandle> {
  const external = process.env.TIDEMARK_TEST_PG_URL;
  if (external) return { url: external, external: true, stop: async () => undefined };
  const db = await PGlite.create();
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 16 });
  await server.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
    external: false,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
