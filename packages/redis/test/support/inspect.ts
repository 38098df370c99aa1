import type { Cluster, Redis } from "ioredis";

// Independent raw readers: plain Redis commands on the documented key layout (README), not
// the adapter's code paths.

/** How many copies of `eventId` the observation store holds (0 or 1). */
export async function countObservations(
  client: Redis | Cluster,
  prefix: string,
  eventId: string,
): Promise<number> {
  return client.hexists(`${prefix}:{${prefix}:observations}:data`, eventId);
}

/** How many versions of `eventId` the rated-record store holds (versions chain v1, v2, …). */
export async function countVersions(
  client: Redis | Cluster,
  prefix: string,
  eventId: string,
): Promise<number> {
  const ids = Array.from({ length: 64 }, (_, i) => `${eventId}:v${i + 1}`);
  const found = await client.hmget(`${prefix}:{${prefix}:rated}:records`, ...ids);
  return found.filter((json) => json !== null).length;
}
