// The JSON Schemas in `schemas/` (one copy, also used by editors through the
// `# yaml-language-server: $schema=` line), compiled when this module loads: immutable from then on, and only the
// modules that validate documents import it.

import { readFileSync } from 'node:fs';
import { Ajv, type AnySchemaObject, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';

export const DOCUMENT_KINDS = ['Site', 'Host', 'Profile', 'Image'] as const;
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];

export const SCHEMA_DIR = new URL('../../schemas/', import.meta.url);

/** Schemas of one part of a document, referred to by file name from the document's schema. */
export const SCHEMA_PARTS = ['site-discovery.schema.json', 'converge.schema.json'] as const;

export function schemaFileName(kind: DocumentKind): string {
  return `${kind.toLowerCase()}.schema.json`;
}

export function readSchema(kind: DocumentKind): AnySchemaObject {
  return JSON.parse(readFileSync(new URL(schemaFileName(kind), SCHEMA_DIR), 'utf8')) as AnySchemaObject;
}

function compileAll(): Record<DocumentKind, ValidateFunction> {
  // verbose: errors carry their schema, where the custom messages live.
  // strictRequired off: `required` inside if/then and oneOf names properties declared one level up.
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
  // Annotations understood by the YAML language server (VS Code); ajv only needs to accept them.
  ajv.addVocabulary(['errorMessage', 'patternErrorMessage']);
  // ajv-formats is CommonJS: under NodeNext its default import is the module object.
  formatsPlugin.default(ajv, ['ipv4']);
  // Parts of a document's schema kept in a file of their own, referred to by file name (`$ref: site-discovery.schema.json`).
  for (const part of SCHEMA_PARTS) ajv.addSchema(JSON.parse(readFileSync(new URL(part, SCHEMA_DIR), 'utf8')) as AnySchemaObject, part);
  const compiled = {} as Record<DocumentKind, ValidateFunction>;
  for (const kind of DOCUMENT_KINDS) compiled[kind] = ajv.compile(readSchema(kind));
  return compiled;
}

const VALIDATORS: Readonly<Record<DocumentKind, ValidateFunction>> = Object.freeze(compileAll());

export function validatorFor(kind: DocumentKind): ValidateFunction {
  return VALIDATORS[kind];
}
