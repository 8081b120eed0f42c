// Knobs for the harness scripts: `--name=value` on the command line wins over the environment
// variable PREFIX_NAME, which wins over the default. The only place the scripts read env.
export class Knobs {
  private readonly args = new Map<string, string>();
  constructor(
    private readonly prefix: string,
    argv: string[] = process.argv.slice(2),
    private readonly env: Record<string, string | undefined> = process.env,
  ) {
    for (const a of argv) {
      const m = /^--([a-z0-9-]+)=(.*)$/i.exec(a);
      if (m === null) throw new Error(`unexpected argument "${a}" (use --name=value)`);
      this.args.set(m[1]!.toLowerCase(), m[2]!);
    }
  }

  private raw(name: string): string | undefined {
    return this.args.get(name) ?? this.env[`${this.prefix}_${name.toUpperCase().replace(/-/g, "_")}`];
  }

  int(name: string, fallback: number): number {
    const v = this.raw(name);
    if (v === undefined || v === "") return fallback;
    if (!/^\d+$/.test(v)) throw new Error(`${name}: expected a non-negative integer, got "${v}"`);
    return Number(v);
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined || v === "") return fallback;
    if (!["true", "false", "1", "0"].includes(v)) throw new Error(`${name}: expected true|false, got "${v}"`);
    return v === "true" || v === "1";
  }

  list<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): readonly T[] {
    const v = this.raw(name);
    if (v === undefined || v === "") return fallback;
    const items = v.split(",").map((s) => s.trim());
    for (const i of items)
      if (!allowed.includes(i as T))
        throw new Error(`${name}: unknown "${i}" (allowed: ${allowed.join(", ")})`);
    return items as T[];
  }
}
