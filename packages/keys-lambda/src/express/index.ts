import type { ServerResponse } from "node:http";
import type { ErrorRequestHandler, Request, RequestHandler } from "express";
import { repeatedHeaderProblem } from "../core/headers.js";
import type { KeyServerRequest, KeyServerRuntime } from "../core/key-server.js";
import { KeyServerConfigError, type KeyServerOptions } from "../core/options.js";
import { createNodeKeyServer } from "../node-runtime/key-server.js";
import { joinHeaders } from "../node-runtime/raw-headers.js";
import { writeInternalError, writeResponse } from "../node-runtime/write-response.js";
import { type ReadBody, withBody, withBodyAfterParserError } from "./body.js";
import { keyRoutePath } from "./route-path.js";

/**
 * Options of the Express key server: the Lambda's and node:http's, with callbacks that receive
 * Express's request (`req.get("authorization")`, `req.ip` as `trust proxy` says, `req.user` from
 * your own middleware).
 */
export interface ExpressKeyServerOptions extends KeyServerOptions<Request> {
  /**
   * The audit record's `requestId` for a request, to find it in your own logs: the id your
   * logging middleware gave it, or a header your trusted proxy sets. A value that is not 1 to 200
   * visible ASCII characters is not used. Default: a random UUID, as on node:http (a request id a
   * client could choose would let it forge the audit trail's correlation).
   */
  requestId?: (req: Request) => string | undefined;
}

/**
 * The key server's two Express handlers, mounted together (`app.use` and `router.use` take the
 * pair as it is): the key routes, and the refusals of the app's body parsers that ran before them.
 */
export type ExpressKeyServer = [RequestHandler, ErrorRequestHandler];

/**
 * The key server as Express middleware, to mount where the app wants it:
 * `app.use("/keys", createExpressKeyServer(options))`. The routes, answers, refusals and audit are
 * the Lambda's and node:http's, from the same core; every request under the mount path is
 * answered (an unknown one with the core's 404), never handed to `next(err)`. Mounted at the
 * root, it answers `/keys/…` and passes every other path on.
 *
 * A body parser the app ran first (`express.json()`, …) leaves the parsed body, which is used; an
 * error it raised on a key route (a body over its limit, or not JSON) is answered with the core's
 * refusal, as the other adapters answer that body. Other errors go on to the app's handlers.
 */
export function createExpressKeyServer(
  options: ExpressKeyServerOptions,
  runtime: KeyServerRuntime = {},
): ExpressKeyServer {
  // Validates the options first: a mistake throws KeyServerConfigError when the app starts.
  const server = createNodeKeyServer<Request>(options, runtime);
  const requestIdOf = requestIdSource(options);

  async function answer(req: Request, res: ServerResponse, path: string, read: ReadBody): Promise<void> {
    const { headers, repeated } = joinHeaders(req.rawHeaders);
    const request: KeyServerRequest<Request> = {
      method: req.method,
      path,
      headers,
      body: read.body,
      problem: repeated ? repeatedHeaderProblem(repeated) : read.problem,
      repeatedHeader: repeated,
      requestId: requestIdOf(req),
      event: req,
    };
    const response = await server(request);
    withoutAppCors(res);
    writeResponse(res, response);
  }

  const keyRoutes: RequestHandler = (req, res, next) => {
    try {
      const path = keyRoutePath(req.baseUrl, req.path);
      if (path === undefined) {
        next();
        return;
      }
      withBody(req, res, (read) => {
        answer(req, res, path, read).catch(() => fail(res));
      });
    } catch {
      fail(res);
    }
  };

  const parserRefusals: ErrorRequestHandler = (error, req, res, next) => {
    let answered = false;
    try {
      const path = keyRoutePath(req.baseUrl, req.path);
      answered =
        path !== undefined &&
        withBodyAfterParserError(error, req, res, (read) => {
          answer(req, res, path, read).catch(() => fail(res));
        });
    } catch {
      answered = true;
      fail(res);
    }
    if (!answered) next(error);
  };

  return [keyRoutes, parserRefusals];
}

function requestIdSource(options: ExpressKeyServerOptions): (req: Request) => string {
  const source: unknown = options.requestId;
  if (source === undefined) return () => crypto.randomUUID();
  if (typeof source !== "function") throw new KeyServerConfigError("requestId must be a function");
  const logger = options.logger ?? console;
  return (req) => {
    let id: unknown;
    try {
      id = source(req);
    } catch (error) {
      logger.error(
        `requestId threw ${error instanceof Error ? error.name : typeof error}; using a random id`,
      );
    }
    return typeof id === "string" && REQUEST_ID.test(id) ? id : crypto.randomUUID();
  };
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * The key routes answer CORS from `corsOrigins` alone, as on the other adapters: CORS headers the
 * app's own middleware set before them (a global `cors()`) would otherwise ride along on their
 * answers, a refusal included.
 */
function withoutAppCors(res: ServerResponse): void {
  for (const name of res.getHeaderNames()) {
    if (name.startsWith("access-control-")) res.removeHeader(name);
  }
}

/** Never `next(err)`: the app's error handler would see internals, and answer differently. */
function fail(res: ServerResponse): void {
  if (res.headersSent) res.destroy();
  else writeInternalError(res);
}
