// Placeholder: the serve command is being written.
export async function serveCommand(_argv: string[]): Promise<number> {
  process.stderr.write('forseti serve: not available yet\n');
  return 2;
}
