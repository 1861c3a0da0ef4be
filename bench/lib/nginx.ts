// nginx as a reference HTTP server for the benchmarks: its own minimal configuration under `prefix`,
// in the foreground, one worker, sendfile on; never the system service.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface NginxSite {
  /** Where its configuration, pid file, logs and temporary files go. */
  prefix: string;
  root: string;
  /** ADDR:PORT */
  listen: string;
  /** Connections at once; default 64. Past 512 the worker's descriptor limit is raised to match. */
  connections?: number;
  /** Default: an access log, as forseti writes a line per exchange. */
  accessLog?: boolean;
}

/** Writes the configuration; returns the command that runs nginx with it. */
export async function nginxCommand(site: NginxSite): Promise<string[]> {
  const { prefix } = site;
  await mkdir(path.join(prefix, 'tmp'), { recursive: true });
  const connections = site.connections ?? 64;
  const conf = path.join(prefix, 'nginx.conf');
  await writeFile(conf, `worker_processes 1;
daemon off;
master_process on;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections ${connections}; }
${connections > 512 ? `worker_rlimit_nofile ${2 * connections};\n` : ''}http {
  access_log ${site.accessLog === false ? 'off' : `${prefix}/access.log`};
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  server {
    listen ${site.listen};
    root ${site.root};
  }
}
`);
  return ['nginx', '-p', prefix, '-c', conf];
}
