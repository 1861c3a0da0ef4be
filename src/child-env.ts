// The environment every program forseti starts gets (ipmitool, perl, …): what finds and runs a program, nothing
// else. The agent's own environment can hold every credential (FORSETI_CREDENTIAL_*_PASSWORD, the age key in
// FORSETI_AGE_KEY) and anything its service manager set; a child has no use for them, and each would sit in
// /proc/<pid>/environ for as long as the child runs. A child that needs a secret is given that one, by name.

/** PATH (to find the program, and what a prefix such as `ip netns exec` runs), the C locale, and `extra`. */
export function childEnv(extra: Record<string, string> = {}, parent: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { PATH: parent['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', ...extra };
}
