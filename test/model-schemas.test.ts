import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ALERTS_SCHEMA } from '../src/model/site-alerts.ts';
import { HOST_DRIFT_SCHEMA, SITE_DRIFT_SCHEMA } from '../src/model/site-drift.ts';

const schema = (name: string): { properties: Record<string, unknown> } => JSON.parse(readFileSync(new URL(`../schemas/${name}.schema.json`, import.meta.url), 'utf8'));

// The editor schemas in schemas/ hold copies of the sections their parsers define; this keeps them equal.
test('schemas/ carries the drift and alerts sections exactly as their parsers define them', () => {
  const json = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
  assert.deepEqual(schema('site').properties['drift'], json(SITE_DRIFT_SCHEMA));
  assert.deepEqual(schema('site').properties['alerts'], json(ALERTS_SCHEMA));
  assert.deepEqual(schema('host').properties['drift'], json(HOST_DRIFT_SCHEMA));
});
