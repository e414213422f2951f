import { bytesToHex } from "@blindcast/crypto";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createPostgresLeaseStore, type PostgresLeaseStore } from "@blindcast/keys/lease-postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, startCluster } from "../../../scripts/pg-cluster.mjs";
import { jsonBody, keyBytes, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt, vectorFor } from "./support/fixtures.js";

// Its own cluster: stopping it must not disturb the other test files' database.
let cluster: Cluster;
let store: PostgresLeaseStore;
const logger = recordingLogger();

beforeAll(async () => {
  cluster = await startCluster();
  store = await createPostgresLeaseStore(cluster.url, { pool: { connectionTimeoutMillis: 1000 }, logger });
}, 60_000);
afterAll(async () => {
  await store?.close();
  cluster?.destroy();
});

const handler = () =>
  createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    authenticate: () => ({ ok: true }),
    getViewerId: (event) => event.headers?.["x-viewer"],
    leaseStore: store,
    maxConcurrentLeases: 10,
    audit: false,
    logger,
  });

const json = (viewer: string) => ({ "content-type": "application/json", "x-viewer": viewer });

describe("the key server on Postgres leases when the database restarts", () => {
  it("answers 503 during the outage, recovers by itself after, and loses no committed lease", async () => {
    const server = handler();
    const leases: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await server(
        v2Event({
          method: "POST",
          path: "/keys/leases",
          headers: json(`viewer-${i}`),
          body: '{"contentId":"movie-42"}',
        }),
      );
      expect(created.statusCode).toBe(201);
      leases.push(String(jsonBody(created).leaseId));
    }
    const key = (i: number) =>
      server(
        v2Event({
          path: "/keys/movie-42/7",
          headers: { "x-viewer": `viewer-${i}`, "x-blindcast-lease": leases[i] ?? "" },
        }),
      );
    expect(bytesToHex(keyBytes(await key(0)))).toBe(vectorFor("movie-42", 7));

    cluster.stop();
    for (const response of [
      await key(1),
      await server(
        v2Event({
          method: "POST",
          path: "/keys/leases",
          headers: json("viewer-9"),
          body: '{"contentId":"movie-42"}',
        }),
      ),
      await server(
        v2Event({
          method: "POST",
          path: "/keys/leases/renew",
          headers: json("viewer-2"),
          body: JSON.stringify({ leaseId: leases[2] }),
        }),
      ),
      await server(
        v2Event({ method: "DELETE", path: `/keys/leases/${leases[3]}`, headers: { "x-viewer": "viewer-3" } }),
      ),
    ]) {
      expect(response.statusCode).toBe(503);
      expect(response.headers["retry-after"]).toBe("1");
      expect(jsonBody(response)).toEqual({
        error: "Lease store unavailable, try again shortly",
        code: "store_unavailable",
      });
    }
    expect(logger.errors.join("\n")).not.toMatch(/password|127\.0\.0\.1/);

    cluster.start();
    for (let i = 0; i < 5; i++) expect(bytesToHex(keyBytes(await key(i)))).toBe(vectorFor("movie-42", 7));
    const renewed = await server(
      v2Event({
        method: "POST",
        path: "/keys/leases/renew",
        headers: json("viewer-2"),
        body: JSON.stringify({ leaseId: leases[2] }),
      }),
    );
    expect(renewed.statusCode).toBe(200);
    const fresh = await server(
      v2Event({
        method: "POST",
        path: "/keys/leases",
        headers: json("viewer-9"),
        body: '{"contentId":"movie-42"}',
      }),
    );
    expect(fresh.statusCode).toBe(201);
  }, 60_000);

  it("works when the database is down at cold start, once it comes up", async () => {
    cluster.stop();
    const cold = await createPostgresLeaseStore(cluster.url, {
      table: "cold_start_leases",
      pool: { connectionTimeoutMillis: 1000 },
      logger,
    });
    const server = createLambdaKeyServer({
      masterKey,
      salt,
      corsOrigins: "*",
      leaseStore: cold,
      audit: false,
      logger,
    });
    const create = () =>
      server(
        v2Event({
          method: "POST",
          path: "/keys/leases",
          headers: { "content-type": "application/json" },
          body: '{"contentId":"a"}',
        }),
      );
    expect((await create()).statusCode).toBe(503);
    cluster.start();
    expect((await create()).statusCode).toBe(201);
    await cold.close();
  }, 60_000);
});
