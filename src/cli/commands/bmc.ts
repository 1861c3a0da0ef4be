// Placeholder: the bmc command is being written.
export async function bmcCommand(_argv: string[]): Promise<number> {
  process.stderr.write('forseti bmc: not available yet\n');
  return 2;
}
