/**
 * One job at a time per key (a pull request): in this process, or with REDIS_URL across every
 * replica of the app, through Bottleneck's Redis clustering, the engine Probot already uses to
 * share Octokit's throttling between replicas. Two deliveries for one pull request that land on
 * two replicas then run one after the other, and the second finds the first one's comment and
 * check run instead of writing its own.
 */
import Bottleneck from 'bottleneck';

export interface Serial {
  run<T>(key: string, work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** In this process only (one replica). */
export function localSerial(): Serial {
  const queues = new Map<string, Promise<unknown>>();
  return {
    async run<T>(key: string, work: () => Promise<T>): Promise<T> {
      const next = (queues.get(key) ?? Promise.resolve()).catch(() => undefined).then(work);
      queues.set(key, next);
      try {
        return await next;
      } finally {
        if (queues.get(key) === next) queues.delete(key);
      }
    },
    async close() {},
  };
}

/** Longest a replica may hold a pull request's turn; past it (a replica that died) the next goes. */
const TURN_MS = 5 * 60_000;

/** Across replicas sharing the Redis at `url`. */
export async function redisSerial(url: string, onError: (e: Error) => void): Promise<Serial> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { maxRetriesPerRequest: 3 });
  const connection = new Bottleneck.IORedisConnection({ client });
  connection.on('error', onError);
  // A promise, whatever bottleneck.d.ts says (lib/IORedisConnection.js sets `this.ready = Promise.all(…)`).
  await (connection as unknown as { ready: Promise<unknown> }).ready;
  const group = new Bottleneck.Group({ id: 'dotfleet-pull-request', maxConcurrent: 1, connection, datastore: 'ioredis', clearDatastore: false, timeout: TURN_MS * 2 });
  group.on('error', onError);
  return {
    run<T>(key: string, work: () => Promise<T>): Promise<T> {
      return group.key(key).schedule({ expiration: TURN_MS }, work);
    },
    async close() {
      await connection.disconnect(true);
    },
  };
}
