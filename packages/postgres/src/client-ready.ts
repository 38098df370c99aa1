/** The parts of a `pg` client that tell whether it still runs a query (absent on PGlite). */
type ClientState = Partial<{
  readyForQuery: boolean;
  _queryable: boolean;
  _ending: boolean;
  _ended: boolean;
  once(event: "drain" | "end" | "error", listener: () => void): unknown;
  removeListener(event: "drain" | "end" | "error", listener: () => void): unknown;
}>;

/**
 * Resolves once `session` has finished its running query (a `pg` client rejects a failed query
 * on the server's ErrorResponse, before its ReadyForQuery; after a failed COPY FROM STDIN the
 * server sends that only once the client ended the copy), or once its connection is gone. A
 * ROLLBACK sent after it is then not a query sent while another runs, which pg 8.23 deprecates
 * and pg 9 removes. Resolves at once for a session that is not a `pg` client.
 * @internal
 */
export function whenIdle(session: unknown): Promise<void> {
  const client = session as ClientState;
  if (client.readyForQuery !== false || client.once === undefined || client.removeListener === undefined) {
    return Promise.resolve();
  }
  if (client._queryable === false || client._ending === true || client._ended === true)
    return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      client.removeListener?.("drain", done);
      client.removeListener?.("end", done);
      client.removeListener?.("error", done);
      resolve();
    };
    client.once?.("drain", done);
    client.once?.("end", done);
    client.once?.("error", done);
  });
}
