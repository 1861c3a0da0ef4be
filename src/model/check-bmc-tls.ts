// bmc.tls of Redfish hosts: the CA file it names is read from the commit (the agent trusts what Git holds) and
// must hold certificates only; TLS settings on a BMC that speaks no TLS are a mistake worth naming.

import { X509Certificate } from 'node:crypto';
import { namedFileProblem } from './documents.ts';
import type { FileRead } from './lab-tree.ts';
import { problem } from './problems.ts';
import type { Host, LabProblem } from './types.ts';
import type { FieldRefs } from '../core/source-ref.ts';
import { errorMessage } from '../core/errors.ts';

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** What is wrong with a CA file's text, said after its name; null: nothing. */
type CaVerdict = { code: 'plaintext-secret' | 'bmc-tls'; why: string } | null;
/** Verdicts by CA text: a file that many hosts name is parsed once per load. */
export type CaVerdicts = Map<string, CaVerdict>;

/**
 * Reads each `bmc.tls.ca` through `readFile` (the lab tree's reader) into `bmc.tls.caPem`; returns the problems.
 * `verdicts` remembers each CA text's verdict across calls of one load.
 */
export function checkBmcTls(hosts: readonly Host[], readFile: (path: string) => Pick<FileRead, 'text' | 'refusal'>, verdicts: CaVerdicts = new Map()): LabProblem[] {
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
    let verdict = verdicts.get(text);
    if (verdict === undefined) verdicts.set(text, (verdict = caVerdict(text)));
    if (verdict) {
      problems.push(problem(where, verdict.code, `bmc.tls.ca "${tls.ca}"${verdict.why}`));
      continue;
    }
    tls.caPem = text;
  }
  return problems;
}

function caVerdict(text: string): CaVerdict {
  if (PRIVATE_KEY.test(text)) return { code: 'plaintext-secret', why: ' holds a private key; a CA file holds certificates only (remove the key from the repository and its history)' };
  const blocks = certificateBlocks(text);
  if (blocks.length === 0) return { code: 'bmc-tls', why: ' holds no PEM certificate (-----BEGIN CERTIFICATE-----)' };
  for (const [i, pem] of blocks.entries()) {
    const why = unparsable(pem);
    if (why !== undefined) return { code: 'bmc-tls', why: `: certificate ${i + 1} cannot be read: ${why}` };
  }
  return null;
}

/** Each BEGIN … END CERTIFICATE block, in one pass (a lazy regular expression rescanned the rest per BEGIN). */
function certificateBlocks(text: string): string[] {
  const blocks: string[] = [];
  for (let begin = text.indexOf(BEGIN); begin >= 0; ) {
    const end = text.indexOf(END, begin + BEGIN.length);
    if (end < 0) break;
    blocks.push(text.slice(begin, end + END.length));
    begin = text.indexOf(BEGIN, end + END.length);
  }
  return blocks;
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
