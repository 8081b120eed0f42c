// Placeholder until its issue lands: fails loudly instead of pretending to work.
export async function migrateCommand(_args: string[], _env: Record<string, string | undefined>): Promise<number> {
  process.stderr.write("paybridge migrate: not implemented yet\n");
  return 1;
}
