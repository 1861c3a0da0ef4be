// schemas/openapi.json: a well-formed OpenAPI 3.1 document the agent serves at /v1/openapi.json, whose enums are
// the code's, and whose checker (test/fixtures/api-contract.ts) catches responses off the contract.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formatsPlugin from 'ajv-formats';
import { checkAgentResponse, contractViolations, fetchChecked } from './fixtures/api-contract.ts';
import { statusOnlyBackend } from './fixtures/status-only-backend.ts';
import { createBootHttpServer, listen } from '../src/serve/boot-http.ts';
import { createLogger } from '../src/log.ts';
import { PHASES, PROVISION_STEPS } from '../src/core/host-state.ts';
import { HEALTH_STATES, SYNC_STATES } from '../src/observe/sync-health.ts';
import { RECONCILE_STAGES } from '../src/observe/activity.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- walking a JSON document
const doc = JSON.parse(readFileSync(new URL('../schemas/openapi.json', import.meta.url), 'utf8')) as Json;
const hostSchema = JSON.parse(readFileSync(new URL('../schemas/status-host.schema.json', import.meta.url), 'utf8')) as Json;
const siteSchema = JSON.parse(readFileSync(new URL('../schemas/status-site.schema.json', import.meta.url), 'utf8')) as Json;

let server: Server;
let base = '';
let statusJson: () => unknown = () => ({ revision: null, generation: null, hosts: {} });
before(async () => {
  server = createBootHttpServer(statusOnlyBackend({ statusJson: () => statusJson() }), createLogger({ level: 'silent' }));
  base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

test('the document is OpenAPI 3.1 with an operation id per operation and every schema compiling', () => {
  assert.equal(doc.openapi, '3.1.0');
  const ids = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const [verb, op] of Object.entries(item as Json)) {
      assert.ok(['get', 'head', 'post'].includes(verb), `${path} ${verb}`);
      assert.ok(!ids.has(op.operationId), `duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
      assert.ok(Object.keys(op.responses).length > 0, `${path} ${verb} has responses`);
    }
  }
  const ajv = new Ajv2020({ strict: false });
  formatsPlugin.default(ajv);
  ajv.addSchema(doc, 'openapi.json');
  for (const name of Object.keys(doc.components.schemas)) ajv.compile({ $ref: `openapi.json#/components/schemas/${name}` });
});

test('the enums in the API and the status file schemas are the code\'s', () => {
  const s = doc.components.schemas;
  assert.deepEqual(s.Phase.enum, [...PHASES]);
  assert.deepEqual(s.Sync.enum, [...SYNC_STATES]);
  assert.deepEqual(s.Health.enum, [...HEALTH_STATES]);
  assert.deepEqual(hostSchema.$defs.phase.enum, [...PHASES]);
  assert.deepEqual(hostSchema.$defs.step.enum, [...PROVISION_STEPS]);
  assert.deepEqual(Object.keys(siteSchema.$defs.reconcile.properties.stages.properties), [...RECONCILE_STAGES]);
  assert.deepEqual(s.Action, hostSchema.$defs.action, 'one shape for actions on the API and the status branch');
  assert.deepEqual(s.Reconcile, siteSchema.$defs.reconcile, 'one shape for reconciles on the API and the status branch');
});

test('GET and HEAD /v1/openapi.json serve the document', async () => {
  const got = await fetchChecked(`${base}/v1/openapi.json`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.problems, []);
  assert.deepEqual(JSON.parse(got.text), doc);
  const head = await fetch(`${base}/v1/openapi.json`, { method: 'HEAD' });
  assert.equal(head.status, 200);
});

test('the checker catches what is off the contract', () => {
  const ok = { method: 'GET', path: '/v1/status', status: 200, contentType: 'application/json', body: JSON.stringify({ revision: null, generation: null, hosts: { a: { role: 'r', phase: 'Ready' } } }) };
  assert.deepEqual(checkAgentResponse(ok), []);
  assert.match(checkAgentResponse({ ...ok, body: '{"revision":null,"generation":null}' }).join(), /must have required property 'hosts'/);
  assert.match(checkAgentResponse({ ...ok, body: JSON.stringify({ revision: null, generation: null, hosts: { a: { role: 'r', phase: 'Asleep' } } }) }).join(), /allowed values/);
  assert.match(checkAgentResponse({ ...ok, contentType: 'text/html' }).join(), /content type "text\/html"/);
  assert.match(checkAgentResponse({ ...ok, path: '/healthz', status: 500, contentType: 'text/plain', body: 'boom' }).join(), /status 500 is not documented/);
  assert.match(checkAgentResponse({ method: 'GET', path: '/v1/boot/52-54-00-00-00-01', status: 200, contentType: 'text/plain; charset=utf-8', body: 'echo hi\n' }).join(), /must match pattern/);
  assert.match(checkAgentResponse({ method: 'GET', path: '/v1/events', status: 200, contentType: 'text/event-stream', body: 'retry: 2000\n\ndata: {"hosts":1}\n\n' }).join(), /body/);
  // Error answers are free-form text or a JSON object: the other shapes of a refusal stay open.
  assert.deepEqual(checkAgentResponse({ method: 'POST', path: '/v1/phone-home', status: 403, contentType: 'application/json', body: '{"error":"unknown token"}' }), []);
  // Paths outside the API (a Redfish fixture, the Git server) are not the agent's.
  assert.deepEqual(checkAgentResponse({ method: 'GET', path: '/redfish/v1/Systems', status: 200, contentType: 'application/json', body: '[]' }), []);
  assert.deepEqual(checkAgentResponse({ method: 'GET', path: '/favicon.ico', status: 200, contentType: 'image/png', body: 'x' }), []);
});

test('the in-process hook sees a real server\'s responses', async () => {
  statusJson = () => ({ revision: null, generation: null, hosts: 'none' });
  try {
    await (await fetch(`${base}/v1/status`)).text();
    await new Promise((r) => setImmediate(r));
    const seen = contractViolations.splice(0);
    assert.equal(seen.length, 1, seen.join('\n'));
    assert.match(seen[0] ?? '', /^GET \/v1\/status → 200: body\/hosts must be object/);
  } finally {
    statusJson = () => ({ revision: null, generation: null, hosts: {} });
  }
  for (const path of ['/v1/status', '/healthz', '/readyz', '/boot.ipxe', '/v1/boot/02-00-00-00-00-09', '/dashboard', '/dashboard/app.js', '/no/such/path']) await (await fetch(`${base}${path}`)).text();
  await (await fetch(`${base}/v1/phone-home`, { method: 'POST', body: 'role=x' })).text();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(contractViolations, []);
});
