// Which values of the lab's SOPS file become redaction patterns. Anyone who gets a commit merged can add values
// (the age recipient is public, in every SOPS file), and a pattern redacts every text it matches: a value like
// "rejected", "compute" or "hosts/" would blank out alert texts, problems and log lines. So a lab value is a pattern
// only when it is long enough and is none of the words the agent and the lab use. A credential's password that is
// not is a problem at its line (the commit is rejected, the last good one keeps serving): an operator sees it on
// the agent, and nothing is silently left unredacted. Other values that are not are simply not patterns.
import { COMMIT_STEPS } from './commit-steps.ts';
import { PHASES, PROVISION_STEPS } from '../core/host-state.ts';
import { ALERT_KINDS } from '../model/site-alerts.ts';
import { problem } from '../model/problems.ts';
import type { Lab, LabProblem } from '../model/types.ts';
import { YamlFile } from '../model/yaml-source.ts';
import { HEALTH_STATES, SYNC_STATES } from '../observe/sync-health.ts';
import type { SecretValue } from '../redact/redactor.ts';
import { LAB_SOPS_FILE, type Secrets } from '../secrets/secrets.ts';

/** The shortest password the lab's SOPS file may hold (the agent's own secrets file may hold shorter ones). */
export const MIN_LAB_SECRET_LENGTH = 8;
/** A bare lower-case word (letters and hyphens) shorter than this reads as a word, not a secret. */
const PLAIN_WORD_BELOW = 16;

/** Words of the agent's own: event and action kinds, phases, steps, alert kinds, states and outcomes. */
const AGENT_WORDS = [
  ...PHASES, ...PROVISION_STEPS, ...ALERT_KINDS, ...COMMIT_STEPS, ...SYNC_STATES, ...HEALTH_STATES,
  'enrolled', 'enroll-failed', 'provision-started', 'wipe-started', 'failed', 'powered-off', 'powered-on', 'rerendered', 'bmc-boot',
  'enroll', 'rerender', 'provision', 'wipe', 'wait', 'fail', 'refuse', 'power-off', 'power-off-by-hand', 'power-on', 'boot-override', 'boot-disk',
  'applied', 'rejected', 'resolved', 'interrupted', 'redacted', 'commit',
];

export interface LabSecretPatterns {
  patterns: SecretValue[];
  /** One per credential whose password cannot be a pattern. */
  problems: LabProblem[];
}

/** Why `value` cannot be a redaction pattern, or null when it can. */
export function weakness(value: string, names: ReadonlySet<string>): string | null {
  const length = [...value].length;
  if (length < MIN_LAB_SECRET_LENGTH) return `${length} characters, fewer than ${MIN_LAB_SECRET_LENGTH}`;
  if (names.has(value.toLowerCase())) return 'a name the agent or the lab uses';
  if (length < PLAIN_WORD_BELOW && /^[a-z]+(?:-[a-z]+)*$/.test(value)) return `a plain lower-case word of fewer than ${PLAIN_WORD_BELOW} characters`;
  return null;
}

/** The words and names no lab value may be: the agent's words, the lab's names, and the SOPS file's own keys. */
export function namesOf(lab: Lab, credentialNames: Iterable<string>): Set<string> {
  const names = [...AGENT_WORDS, lab.site.name, ...lab.hosts.keys(), ...lab.profiles.keys(), ...lab.images.keys(), ...credentialNames];
  return new Set(names.map((n) => n.toLowerCase()));
}

export function labSecretPatterns(secrets: Secrets, lab: Lab): LabSecretPatterns {
  const { credentials, others } = secrets.labValues();
  const names = namesOf(lab, credentials.keys());
  const patterns: SecretValue[] = [];
  const problems: LabProblem[] = [];
  let yaml: YamlFile | undefined;
  for (const [name, credential] of credentials) {
    const weak = weakness(credential.password, names);
    if (!weak) {
      patterns.push(credential);
      continue;
    }
    yaml ??= YamlFile.parse(LAB_SOPS_FILE, secrets.sopsText ?? '').yaml;
    const ref = yaml?.refOf([name, 'password']) ?? { file: LAB_SOPS_FILE, line: 1, col: 1 };
    problems.push(
      problem(ref, 'weak-secret', `the password of credential "${name}" is ${weak}: it could not be told apart from other text in logs, the status branch and alerts; use a longer, random one (a BMC that takes only short passwords: put it in the agent's secrets file)`),
    );
  }
  for (const value of others) if (!weakness(value, names)) patterns.push({ password: value });
  return { patterns, problems };
}
