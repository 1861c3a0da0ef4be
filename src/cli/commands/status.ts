// Placeholder: the status command is being written.
export async function statusCommand(_argv: string[]): Promise<number> {
  process.stderr.write('forseti status: not available yet\n');
  return 2;
}
