import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';

interface Asset {
  body: Buffer;
  type: string;
}

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/dashboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
};

/**
 * Read-only page: scripts only from this origin, no inline script, styles inline (the page carries its CSS),
 * connections only back to the agent, and never framed.
 */
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export function isDashboardPath(path: string): boolean {
  return Object.hasOwn(FILES, path) || path === '/dashboard/';
}

/** The page and its script, each read once (next to this module) by the server that sends them. */
export class DashboardAssets {
  private readonly read = new Map<string, Asset>();

  /**
   * Sends the page or its script; false when `path` is not one of them. The page refers to its script and the
   * API relatively (`dashboard/app.js`, `v1/events`), so it also works behind a proxy under a path prefix;
   * `/dashboard/` would break those, hence the redirect.
   */
  send(path: string, method: string, res: ServerResponse): boolean {
    if (path === '/dashboard/') {
      res.writeHead(308, { Location: '../dashboard', 'Content-Length': 0 }).end();
      return true;
    }
    const found = this.asset(path);
    if (!found) return false;
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': found.type, 'Content-Length': found.body.length, 'Cache-Control': 'no-cache' });
    res.end(method === 'HEAD' ? undefined : found.body);
    return true;
  }

  private asset(path: string): Asset | null {
    const entry = Object.hasOwn(FILES, path) ? FILES[path] : undefined;
    if (!entry) return null;
    let found = this.read.get(entry.file);
    if (!found) {
      // Next to this module: tsx runs the sources, so there is no build output to look for.
      found = { body: readFileSync(new URL(entry.file, import.meta.url)), type: entry.type };
      this.read.set(entry.file, found);
    }
    return found;
  }
}
