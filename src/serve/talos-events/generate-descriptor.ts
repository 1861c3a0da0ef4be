// The run-time form of proto/*.proto: protobufjs' JSON descriptor, written into descriptor.ts so that the release
// bundle (one CommonJS file, scripts/build-release.mjs) reads no .proto file at run time. The .proto files stay
// the source; test/talos-events.test.ts fails when descriptor.ts is not what they give.
//   node --import tsx src/serve/talos-events/generate-descriptor.ts          rewrite descriptor.ts
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_DIR = new URL('./proto/', import.meta.url);
export const PROTO_FILES = ['events.proto', 'machine.proto', 'common.proto'] as const;
const DESCRIPTOR_FILE = new URL('./descriptor.ts', import.meta.url);

/** The descriptor the .proto files give, as the text of descriptor.ts. */
export function descriptorSource(): string {
  const root = new protobuf.Root();
  root.loadSync(PROTO_FILES.map((f) => fileURLToPath(new URL(f, PROTO_DIR))), { keepCase: true });
  root.resolveAll();
  const json = JSON.stringify(root.toJSON());
  return [
    '// Generated from proto/*.proto by generate-descriptor.ts (node --import tsx src/serve/talos-events/generate-descriptor.ts).',
    '// Do not edit: change the .proto files and generate again.',
    `export const TALOS_EVENTS_DESCRIPTOR = ${json};`,
    '',
  ].join('\n');
}

export const descriptorFile = (): string => fileURLToPath(DESCRIPTOR_FILE);

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(descriptorFile(), descriptorSource());
  process.stdout.write(`wrote ${descriptorFile()}\n`);
}
