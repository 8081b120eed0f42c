// Static checks of the Dockerfile (no Docker engine or hadolint here): pinned bases, distroless
// nonroot runtime with only the binary, exec-form entrypoint, production env. The checks are
// run against the real file (no problems) and against broken copies (each problem named).
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { readText, repoPath } from "./lib.ts";

type Instruction = { op: string; args: string; line: number };
type Stage = { name: string | undefined; from: string; instructions: Instruction[] };

/** Parses a Dockerfile into stages: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.trimEnd().endsWith("\\") && i + 1 < lines.length) {
      line = `${line.trimEnd().slice(0, -1)} `;
      i++;
      while (i < lines.length && /^\s*#/.test(lines[i]!)) i++;
      line += lines[i] ?? "";
    }
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(line);
    if (!m) throw new Error(`line ${start + 1}: cannot parse "${line}"`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.replace(/\s+/g, " ").trim();
    if (op === "FROM") {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`line ${start + 1}: bad FROM`);
      stages.push({ from: f[1]!, name: f[2]?.toLowerCase(), instructions: [] });
    } else if (op !== "ARG" || stages.length > 0) {
      if (stages.length === 0) throw new Error(`line ${start + 1}: ${op} before FROM`);
      stages.at(-1)!.instructions.push({ op, args, line: start + 1 });
    }
  }
  return stages;
}

const PINNED = /^[a-z0-9./_-]+(:[0-9]+)?\/?[a-z0-9./_-]*:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$/;
const RUNTIME_BASES = ["gcr.io/distroless/base-debian12:nonroot", "gcr.io/distroless/cc-debian12:nonroot"];
const REQUIRED_LABELS = ["title", "version", "revision", "created", "source"].map(
  (l) => `org.opencontainers.image.${l}`,
);

function execForm(args: string): string[] | undefined {
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === "string") ? v : undefined;
  } catch {
    return undefined;
  }
}

export function dockerfileProblems(text: string, bunVersion: string): string[] {
  const problems: string[] = [];
  const stages = parseDockerfile(text);
  const names = new Set(stages.map((s) => s.name).filter((n) => n !== undefined));
  for (const s of stages) {
    if (names.has(s.from.toLowerCase())) continue;
    if (!PINNED.test(s.from)) problems.push(`base image ${s.from} is not pinned by tag and sha256 digest`);
    if (/:latest@|:latest$/.test(s.from)) problems.push(`base image ${s.from} uses latest`);
  }
  const external = stages.filter((s) => !names.has(s.from.toLowerCase()));
  const bun = external.find((s) => s.from.startsWith("oven/bun:"));
  if (!bun) problems.push("no stage builds with the official oven/bun image");
  else if (!imageTag(bun.from).startsWith(`${bunVersion}-debian`)) {
    problems.push(
      `Bun image ${imageTag(bun.from)} is not ${bunVersion}-debian (Makefile BUN_VERSION, glibc)`,
    );
  }
  const all = stages.flatMap((s) => s.instructions);
  if (!all.some((i) => i.op === "RUN" && /\bbun install --frozen-lockfile\b/.test(i.args)))
    problems.push("no `bun install --frozen-lockfile`");
  if (!all.some((i) => i.op === "RUN" && /\bmake build\b/.test(i.args))) problems.push("no `make build`");
  if (!stages.some((s) => s.name === "test")) problems.push("no optional test stage");

  const runtime = stages.at(-1);
  if (!runtime) return [...problems, "no stages"];
  if (!RUNTIME_BASES.some((b) => runtime.from.startsWith(`${b}@`)))
    problems.push(`runtime stage ${runtime.from} is not distroless nonroot`);
  if (runtime.name === "test") problems.push("the test stage is the default target");
  const ops = (op: string) => runtime.instructions.filter((i) => i.op === op);
  for (const op of ["RUN", "ADD"])
    if (ops(op).length > 0)
      problems.push(`runtime stage uses ${op} (no shell at run time; only the binary is copied)`);
  const copies = ops("COPY");
  const binaryCopy = /^--from=(\S+)(?: --chown=\S+| --chmod=\S+)* (\S+) \/paybridge$/.exec(
    copies[0]?.args ?? "",
  );
  if (copies.length !== 1 || !binaryCopy)
    problems.push("runtime stage must copy exactly one file: the binary to /paybridge");
  else {
    if (!names.has(binaryCopy[1]!.toLowerCase()) || binaryCopy[1] === "test")
      problems.push(`binary copied from ${binaryCopy[1]}, not a build stage`);
    if (!binaryCopy[2]!.endsWith("/dist/paybridge"))
      problems.push(`copied ${binaryCopy[2]}, not the make build output dist/paybridge`);
  }
  const user = ops("USER").at(-1)?.args;
  if (user !== "65532:65532" && user !== "65532")
    problems.push(`runtime USER is ${user ?? "unset"}, not 65532`);
  if (!ops("ENV").some((i) => /(^|\s)PAYBRIDGE_ENV=production(\s|$)/.test(i.args)))
    problems.push("PAYBRIDGE_ENV=production is not set");
  const entry = ops("ENTRYPOINT").at(-1);
  const cmd = ops("CMD").at(-1);
  if (JSON.stringify(execForm(entry?.args ?? "")) !== JSON.stringify(["/paybridge"]))
    problems.push('ENTRYPOINT is not exec-form ["/paybridge"]');
  if (JSON.stringify(execForm(cmd?.args ?? "")) !== JSON.stringify(["serve"]))
    problems.push('CMD is not exec-form ["serve"]');
  const labels = ops("LABEL")
    .map((i) => i.args)
    .join(" ");
  for (const l of REQUIRED_LABELS) if (!labels.includes(`${l}=`)) problems.push(`missing OCI label ${l}`);
  return problems;
}

function imageTag(ref: string): string {
  return ref.replace(/@.*$/, "").replace(/^.*:/, "");
}

describe("Dockerfile", () => {
  const dockerfile = readText("Dockerfile");
  const bunVersion = /^BUN_VERSION := (\S+)$/m.exec(readText("Makefile"))?.[1] ?? "missing";

  test("meets the shipping rules (pinned, distroless nonroot, binary only, exec form, production)", () => {
    expect(dockerfileProblems(dockerfile, bunVersion)).toEqual([]);
  });

  test("copies the Makefile's build output and exposes the configured ports", () => {
    expect(readText("Makefile")).toContain("--outfile dist/paybridge");
    const expose = parseDockerfile(dockerfile)
      .at(-1)!
      .instructions.find((i) => i.op === "EXPOSE")!
      .args.split(" ");
    const cm = readText("deploy/k8s/base/configmap.yaml");
    for (const key of ["PORT", "MANAGEMENT_PORT"]) {
      const port = new RegExp(`^\\s+${key}: "(\\d+)"`, "m").exec(cm)?.[1];
      expect(expose).toContain(port!);
    }
  });

  test(".dockerignore keeps VCS data, local installs, builds and secrets out of the context", () => {
    expect(existsSync(repoPath(".dockerignore"))).toBe(true);
    const entries = readText(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    for (const e of [".git", "node_modules", "dist", ".env", ".tools"]) expect(entries).toContain(e);
    // what the build and test stages read must stay in the context
    for (const e of ["src", "migrations", "Makefile", "package.json", "bun.lock", "test", "deploy"])
      expect(entries).not.toContain(e);
  });

  describe("broken copies are caught", () => {
    const cases: [string, (t: string) => string, RegExp][] = [
      ["unpinned base", (t) => t.replace(/(oven\/bun:[^@\s]+)@sha256:[0-9a-f]{64}/, "$1"), /not pinned/],
      ["latest tag", (t) => t.replace(/nonroot@/, "latest@"), /uses latest|not distroless nonroot/],
      ["alpine Bun image", (t) => t.replace(/-debian@/, "-alpine@"), /not 1\.4\.4-debian/],
      [
        "shell-form entrypoint",
        (t) => t.replace('ENTRYPOINT ["/paybridge"]', "ENTRYPOINT /paybridge"),
        /ENTRYPOINT is not exec-form/,
      ],
      ["shell-form cmd", (t) => t.replace('CMD ["serve"]', "CMD serve"), /CMD is not exec-form/],
      ["runs as root", (t) => t.replace("USER 65532:65532", "USER root"), /USER is root/],
      [
        "no production env",
        (t) => t.replace("ENV PAYBRIDGE_ENV=production", "ENV TZ=UTC"),
        /PAYBRIDGE_ENV=production/,
      ],
      [
        "copies more than the binary",
        (t) => t.replace("ENTRYPOINT", "COPY --from=build /src/node_modules /node_modules\nENTRYPOINT"),
        /exactly one file/,
      ],
      [
        "runtime on a full OS",
        (t) => t.replace(/gcr\.io\/distroless\/base-debian12:nonroot@/, "debian:12@"),
        /not distroless nonroot/,
      ],
      [
        "shell in the runtime stage",
        (t) => t.replace("USER 65532:65532", "RUN chmod 755 /paybridge\nUSER 65532:65532"),
        /runtime stage uses RUN/,
      ],
      ["no frozen lockfile", (t) => t.replace("--frozen-lockfile", ""), /frozen-lockfile/],
      [
        "missing OCI label",
        (t) => t.replace(/org\.opencontainers\.image\.revision=/, "x="),
        /image\.revision/,
      ],
    ];
    for (const [name, fn, expected] of cases) {
      test(name, () => {
        const broken = fn(dockerfile);
        expect(broken).not.toBe(dockerfile);
        expect(dockerfileProblems(broken, bunVersion).join("\n")).toMatch(expected);
      });
    }
  });
});
