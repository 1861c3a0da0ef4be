// bmc.tls of Redfish hosts: the CA file it names is read from the commit (the agent trusts what Git holds) and
// must hold certificates only; TLS settings on a BMC that speaks no TLS are a mistake worth naming.

import { X509Certificate } from 'node:crypto';
import { namedFileProblem } from './documents.ts';
import type { FileRead } from './lab-tree.ts';
import { problem } from './problems.ts';
import type { Host, LabProblem } from './types.ts';
import type { FieldRefs } from '../core/source-ref.ts';
import { errorMessage } from '../core/errors.ts';

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** Reads each `bmc.tls.ca` through `readFile` (the lab tree's reader) into `bmc.tls.caPem`; returns the problems. */
export function checkBmcTls(hosts: readonly Host[], readFile: (path: string) => Pick<FileRead, 'text' | 'refusal'>): LabProblem[] {
  const problems: LabProblem[] = [];
  for (const host of hosts) {
    const { tls, type } = host.bmc;
    if (!tls) continue;
    if (type !== 'redfish') {
      problems.push(problem(at(host.refs, 'bmc.tls'), 'bmc-tls', `bmc.tls applies to Redfish BMCs only; host ${host.name}'s BMC is ${type}`));
      continue;
    }
    if (tls.ca === undefined) continue;
    const where = at(host.refs, 'bmc.tls.ca');
    const { text, refusal } = readFile(tls.ca);
    if (refusal) {
      problems.push(namedFileProblem(where, 'bmc.tls.ca', tls.ca, refusal));
      continue;
    }
    if (text === undefined) {
      problems.push(problem(where, 'missing-file', `bmc.tls.ca "${tls.ca}" does not exist in the lab repository`));
      continue;
    }
    if (PRIVATE_KEY.test(text)) {
      problems.push(problem(where, 'plaintext-secret', `bmc.tls.ca "${tls.ca}" holds a private key; a CA file holds certificates only (remove the key from the repository and its history)`));
      continue;
    }
    const blocks = text.match(CERTIFICATE) ?? [];
    if (blocks.length === 0) {
      problems.push(problem(where, 'bmc-tls', `bmc.tls.ca "${tls.ca}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`));
      continue;
    }
    const broken = blocks.map((pem, i) => ({ i, why: unparsable(pem) })).find((b) => b.why !== undefined);
    if (broken) {
      problems.push(problem(where, 'bmc-tls', `bmc.tls.ca "${tls.ca}": certificate ${broken.i + 1} cannot be read: ${broken.why}`));
      continue;
    }
    tls.caPem = text;
  }
  return problems;
}

function unparsable(pem: string): string | undefined {
  try {
    new X509Certificate(pem);
    return undefined;
  } catch (e) {
    return errorMessage(e);
  }
}

function at(refs: FieldRefs, path: string): FieldRefs[string] {
  return refs[path] ?? refs['bmc'] ?? refs[''] ?? { file: '?', line: 1, col: 1 };
}
