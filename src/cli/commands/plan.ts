// Placeholder: the plan command is being written.
export async function planCommand(_argv: string[]): Promise<number> {
  process.stderr.write('forseti plan: not available yet\n');
  return 2;
}
