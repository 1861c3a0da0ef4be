// GET /v1/openapi.json: the OpenAPI 3.1 description of the agent's HTTP API (schemas/openapi.json), read once.
import { readFileSync } from 'node:fs';

const DOCUMENT = new URL('../../schemas/openapi.json', import.meta.url);

export const OPENAPI_PATH = '/v1/openapi.json';

/** The document's text; `cache` belongs to one server. */
export function openApiDocument(cache: { text?: string }): string {
  cache.text ??= readFileSync(DOCUMENT, 'utf8');
  return cache.text;
}
