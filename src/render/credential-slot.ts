// A credential whose password goes into what a host boots (Omni's join token on its kernel line). Rendering writes a
// slot; the boot backend fills it when it serves the host its own script, at its reserved address, as it does the
// token of its attempt (src/serve/boot-backend.ts). Generations on disk, `plan` and `render` never hold the secret,
// and a rotated token is served at once without rendering (or reinstalling) anything.
const SLOT = /@@forseti-credential:([A-Za-z0-9][A-Za-z0-9._-]*)@@/g;

export function credentialSlot(name: string): string {
  return `@@forseti-credential:${name}@@`;
}

/** The text with every slot filled by `password`; `missing` names the first credential it could not give. */
export function fillCredentialSlots(text: string, password: (name: string) => string | undefined): { text: string } | { missing: string } {
  let missing: string | undefined;
  const filled = text.replace(SLOT, (_slot, name: string) => {
    const value = password(name);
    if (value === undefined) missing ??= name;
    return value ?? '';
  });
  return missing === undefined ? { text: filled } : { missing };
}
