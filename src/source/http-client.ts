import http from 'isomorphic-git/http/node';
import type { HttpClient } from 'isomorphic-git';

/**
 * isomorphic-git's node client with a socket idle timeout: without one a server that accepts the
 * connection and then stalls would hang sync() forever.
 */
export function httpClientWithTimeout(timeoutMs: number): HttpClient {
  return {
    request: (req) => http.request({ ...req, fetchOptions: { ...(req.fetchOptions as object | undefined), timeout: timeoutMs } }),
  };
}
