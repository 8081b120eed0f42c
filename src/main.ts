// argv → subcommand. The composition root: configuration, the database pool and the logger
// are created by each subcommand from here and passed down; nothing happens at import time.

import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, USAGE, UsageError } from "./cli/usage.ts";
import { versionText } from "./cli/version.ts";
import { ConfigError } from "./config.ts";

type Command = (args: string[], env: Record<string, string | undefined>) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import("./cli/serve.ts")).serveCommand,
  migrate: async () => (await import("./cli/migrate.ts")).migrateCommand,
  token: async () => (await import("./cli/token.ts")).tokenCommand,
  relay: async () => (await import("./cli/relay.ts")).relayCommand,
};

export async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) {
    process.stderr.write(USAGE);
    return EXIT_USAGE;
  }
  if (cmd === "help" || cmd === "--help" || cmd === "-h") {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (cmd === "version" || cmd === "--version") {
    if (args.length > 0) {
      process.stderr.write(`paybridge version: unexpected argument "${args[0]}"\n`);
      return EXIT_USAGE;
    }
    process.stdout.write(versionText());
    return EXIT_OK;
  }
  const load = COMMANDS[cmd];
  if (load === undefined) {
    process.stderr.write(`paybridge: unknown command "${cmd}"\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    return await (await load())(args, env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`paybridge ${cmd}: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`config: ${p}\n`);
      return EXIT_FAILURE;
    }
    process.stderr.write(`paybridge ${cmd}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2), process.env);
  // serve and relay keep running until a signal; they resolve only when done.
  process.exit(code);
}
