// docker-compose.yml cannot run here (no Docker engine): check it statically. Every referenced
// file exists, images are pinned, environment variables are ones src/config.ts reads and load
// into a valid configuration, ports line up with PORT / MANAGEMENT_PORT and the Prometheus
// target, dependencies exist and the startup order runs `migrate up` before `serve`.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { parse } from "yaml";
import { loadConfig } from "../../src/config.ts";
import { configVarNames, REPO, readText, readYaml, repoPath } from "./lib.ts";

type Service = {
  image?: string;
  build?: { context: string; dockerfile?: string } | string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  user?: string;
  read_only?: boolean;
  stop_grace_period?: string;
};
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> };

const CONDITIONS = ["service_started", "service_healthy", "service_completed_successfully"];
const PAYBRIDGE_IMAGE = "paybridge:local";

/** Problems of a parsed compose file; [] for the real one. */
export function composeProblems(c: Compose): string[] {
  const problems: string[] = [];
  const names = new Set(Object.keys(c.services));
  const vars = configVarNames();
  for (const need of ["postgres", "migrate", "paybridge", "nats", "redis", "prometheus", "grafana"]) {
    if (!names.has(need)) problems.push(`service ${need} is missing`);
  }
  for (const [name, s] of Object.entries(c.services)) {
    if (s.build !== undefined) {
      const b = typeof s.build === "string" ? { context: s.build } : s.build;
      if (!existsSync(join(REPO, b.context, b.dockerfile ?? "Dockerfile")))
        problems.push(`${name}: build file missing`);
    }
    if (!s.image) problems.push(`${name}: no image`);
    else if (
      s.image !== PAYBRIDGE_IMAGE &&
      !/:[0-9][\w.-]*$|:v[0-9][\w.-]*$/.test(s.image.replace(/@sha256:.*$/, ""))
    ) {
      problems.push(`${name}: image ${s.image} is not pinned to a version tag`);
    }
    for (const v of s.volumes ?? []) {
      const [src] = v.split(":");
      if (src!.startsWith(".") || isAbsolute(src!)) {
        if (!existsSync(join(REPO, src!))) problems.push(`${name}: mounted path ${src} does not exist`);
      } else if (!c.volumes || !(src! in c.volumes))
        problems.push(`${name}: named volume ${src} is not declared`);
    }
    const deps = Array.isArray(s.depends_on)
      ? Object.fromEntries(s.depends_on.map((d) => [d, { condition: "service_started" }]))
      : (s.depends_on ?? {});
    for (const [dep, { condition }] of Object.entries(deps)) {
      if (!names.has(dep)) problems.push(`${name}: depends on unknown service ${dep}`);
      if (!CONDITIONS.includes(condition)) problems.push(`${name}: unknown condition ${condition}`);
    }
    if (s.image === PAYBRIDGE_IMAGE) {
      for (const key of Object.keys(s.environment ?? {}))
        if (!vars.has(key)) problems.push(`${name}: ${key} is not read by src/config.ts`);
      if (s.user !== "65532:65532" || s.read_only !== true)
        problems.push(`${name}: must run as 65532 on a read-only root filesystem`);
    }
  }
  const migrate = c.services.migrate;
  const app = c.services.paybridge;
  if (migrate && app) {
    if (JSON.stringify(migrate.command) !== JSON.stringify(["migrate", "up"]))
      problems.push("migrate: must run `migrate up`");
    if (JSON.stringify(app.command) !== JSON.stringify(["serve"]))
      problems.push("paybridge: must run `serve`");
    const deps = app.depends_on as Record<string, { condition: string }> | undefined;
    if (deps?.migrate?.condition !== "service_completed_successfully")
      problems.push("paybridge must start after migrate completed successfully");
    const env = app.environment ?? {};
    const published = (app.ports ?? []).map((p) => Number(p.split(":").at(-1)));
    for (const key of ["PORT", "MANAGEMENT_PORT"]) {
      if (env[key] !== undefined && !published.includes(Number(env[key])))
        problems.push(`paybridge: ${key} ${env[key]} is not a published container port`);
    }
    for (const [key, host] of [
      ["DATABASE_URL", "postgres"],
      ["NATS_URL", "nats"],
      ["REDIS_URL", "redis"],
    ] as const) {
      const value = env[key] ?? migrate.environment?.[key];
      if (value !== undefined && new URL(value).hostname !== host)
        problems.push(`${key} does not point at the ${host} service`);
    }
  }
  return problems;
}

const compose = parse(readText("docker-compose.yml"), { merge: true }) as Compose;

describe("docker-compose.yml", () => {
  test("references only existing files, services, volumes, variables; pinned images", () => {
    expect(composeProblems(compose)).toEqual([]);
  });

  test("the PayBridge environment is a valid configuration for serve and migrate", () => {
    const app = compose.services.paybridge!.environment!;
    const cfg = loadConfig(app, "serve");
    expect(cfg.managementPort).toBe(9090);
    expect(cfg.natsUrl).toBe("nats://nats:4222");
    loadConfig(compose.services.migrate!.environment!, "migrate");
    // the stop grace period covers the shutdown budget, as in Kubernetes
    expect(Number.parseInt(compose.services.paybridge!.stop_grace_period!, 10)).toBeGreaterThan(
      cfg.shutdownTimeoutSeconds,
    );
  });

  test("Prometheus scrapes PayBridge's management port and loads the mounted alert rules", () => {
    const prom = readYaml(repoPath("deploy/prometheus/prometheus.yml")) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const job = prom.scrape_configs.find((s) => s.job_name === "paybridge")!;
    expect(job.static_configs[0]!.targets).toEqual([
      `paybridge:${compose.services.paybridge!.environment!.MANAGEMENT_PORT}`,
    ]);
    const mounts = compose.services.prometheus!.volumes!;
    expect(mounts).toContain("./deploy/prometheus:/etc/prometheus:ro");
    expect(prom.rule_files).toEqual(["rules/*.yaml"]);
    expect(existsSync(repoPath("deploy/prometheus/rules/paybridge.rules.yaml"))).toBe(true);
  });

  test("Grafana gets the provisioning folder and the dashboard at the provider's path", () => {
    const mounts = compose.services.grafana!.volumes!;
    expect(mounts).toContain("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro");
    const prov = readYaml(repoPath("deploy/grafana/provisioning/dashboards/paybridge.yaml")) as {
      providers: { options: { path: string } }[];
    };
    expect(mounts).toContain(`./deploy/grafana/dashboards:${prov.providers[0]!.options.path}:ro`);
    expect(existsSync(repoPath("deploy/grafana/dashboards/paybridge.json"))).toBe(true);
  });

  describe("broken copies are caught", () => {
    const mutate = (fn: (c: Compose) => void) => {
      const c = structuredClone(compose);
      fn(c);
      return composeProblems(c).join("\n");
    };
    const cases: [string, (c: Compose) => void, RegExp][] = [
      [
        "missing mounted file",
        (c) => {
          c.services.grafana!.volumes![0] = "./deploy/grafana/provisionning:/etc/grafana/provisioning:ro";
        },
        /provisionning does not exist/,
      ],
      [
        "unknown dependency",
        (c) => {
          c.services.prometheus!.depends_on = ["paybrige"];
        },
        /unknown service paybrige/,
      ],
      [
        "unknown variable",
        (c) => {
          c.services.paybridge!.environment!.DB_POOL_SIZE = "5";
        },
        /DB_POOL_SIZE is not read/,
      ],
      [
        "unpinned image",
        (c) => {
          c.services.redis!.image = "redis:latest";
        },
        /redis:latest is not pinned/,
      ],
      [
        "port mismatch",
        (c) => {
          c.services.paybridge!.environment!.MANAGEMENT_PORT = "9100";
        },
        /MANAGEMENT_PORT 9100 is not a published/,
      ],
      [
        "serve before migrate",
        (c) => {
          (c.services.paybridge!.depends_on as Record<string, { condition: string }>).migrate!.condition =
            "service_started";
        },
        /after migrate completed/,
      ],
      [
        "undeclared volume",
        (c) => {
          delete c.volumes!.pgdata;
        },
        /pgdata is not declared/,
      ],
    ];
    for (const [name, fn, expected] of cases) test(name, () => expect(mutate(fn)).toMatch(expected));
  });
});
