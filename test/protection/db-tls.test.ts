// Database TLS against a throw-away PostgreSQL cluster created here: initdb into a temp dir,
// its own port, ssl=on with certificates made by openssl, and pg_hba that refuses anything
// but TLS. The shared PostgreSQL is never touched. The cluster is always torn down.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { createSql } from "../../src/db/client.ts";
import { DatabaseTlsError, sslOptions } from "../../src/db/tls.ts";

const PG_BIN = "/usr/lib/postgresql/15/bin";
const dir = mkdtempSync(join(tmpdir(), "pb-dbtls-"));
const data = join(dir, "data");
let port = 0;
let started = false;
/** initdb + openssl on two shared cores can take many seconds under load. */
const CLUSTER_SETUP_TIMEOUT_MS = 180_000;
setDefaultTimeout(30_000);

// PostgreSQL refuses to run as root: as root (CI containers), the cluster runs as `postgres`.
const AS_ROOT = process.getuid?.() === 0;
const asServerUser = (cmd: string[]) => (AS_ROOT ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd);

function run(cmd: string[], opts: { cwd?: string; allowFail?: boolean } = {}) {
  const p = Bun.spawnSync(cmd, { cwd: opts.cwd ?? dir, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0 && !opts.allowFail) {
    throw new Error(`${cmd.join(" ")} failed: ${p.stderr.toString()}`);
  }
  return p;
}

/** A CA, and a server certificate it signs for the given subjectAltName. */
function makeCa(name: string) {
  run([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
  ]);
  return join(dir, `${name}.crt`);
}
function makeServerCert(ca: string, name: string, san: string) {
  run([
    "openssl",
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  ]);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  run([
    "openssl",
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  ]);
  chmodSync(join(dir, `${name}.key`), 0o600);
}

const url = (params: string, host = "127.0.0.1") => `postgres://postgres@${host}:${port}/postgres?${params}`;

/** Connects through createSql (the app's pool factory) and reports whether the session is TLS. */
async function sslInUse(databaseUrl: string): Promise<boolean> {
  const config = loadConfig({ DATABASE_URL: databaseUrl }, "migrate");
  const sql = createSql(config, { applicationName: "paybridge-tls-test", max: 1 });
  try {
    const [row] = await sql`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
    return (row as { ssl: boolean }).ssl;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

beforeAll(async () => {
  makeCa("ca");
  makeCa("wrongca");
  makeServerCert("ca", "server", "DNS:localhost,IP:127.0.0.1");
  makeServerCert("ca", "othername", "DNS:db.other.example");
  if (AS_ROOT) run(["chown", "-R", "postgres:postgres", dir]);
  run(
    asServerUser([
      `${PG_BIN}/initdb`,
      "-D",
      data,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--no-sync",
    ]),
  );
  writeFileSync(
    join(data, "pg_hba.conf"),
    "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
  );
  // A free port: try random high ports until the server starts (other helpers run clusters too).
  for (let attempt = 0; attempt < 10 && !started; attempt++) {
    port = 20_000 + Math.floor(Math.random() * 30_000);
    writeFileSync(
      join(data, "postgresql.auto.conf"),
      [
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${dir}'`,
        "ssl = on",
        `ssl_cert_file = '${join(dir, "server.crt")}'`,
        `ssl_key_file = '${join(dir, "server.key")}'`,
        "fsync = off",
        "max_connections = 20",
        "shared_buffers = 16MB",
      ].join("\n"),
    );
    started =
      run(asServerUser([`${PG_BIN}/pg_ctl`, "-D", data, "-l", join(dir, "log"), "-w", "-t", "30", "start"]), {
        allowFail: true,
      }).exitCode === 0;
  }
  if (!started)
    throw new Error(`throw-away cluster did not start: ${Bun.file(join(dir, "log")).size} bytes of log`);
}, CLUSTER_SETUP_TIMEOUT_MS);

afterAll(() => {
  if (started)
    run(asServerUser([`${PG_BIN}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"]), { allowFail: true });
  rmSync(dir, { recursive: true, force: true });
});

describe("database TLS (sslmode) against a TLS-only cluster", () => {
  test("sslmode=require: encrypted, connects without a CA", async () => {
    expect(await sslInUse(url("sslmode=require"))).toBe(true);
  });

  test("sslmode=verify-full with sslrootcert: chain and host name (IP and DNS) verified", async () => {
    const ca = join(dir, "ca.crt");
    expect(await sslInUse(url(`sslmode=verify-full&sslrootcert=${ca}`))).toBe(true);
    expect(await sslInUse(url(`sslmode=verify-full&sslrootcert=${ca}`, "localhost"))).toBe(true);
  });

  test("verify-full with the wrong CA fails; so does verify-full without a CA (self-signed chain)", async () => {
    await expect(
      sslInUse(url(`sslmode=verify-full&sslrootcert=${join(dir, "wrongca.crt")}`)),
    ).rejects.toThrow();
    await expect(sslInUse(url("sslmode=verify-full"))).rejects.toThrow();
  });

  test("sslmode=disable is refused by a TLS-only server (proves the modes above really used TLS)", async () => {
    await expect(sslInUse(url("sslmode=disable"))).rejects.toThrow();
  });

  test("a certificate for another name: verify-full fails, verify-ca and require still connect", async () => {
    writeFileSync(
      join(data, "postgresql.auto.conf"),
      (await Bun.file(join(data, "postgresql.auto.conf")).text())
        .replace(join(dir, "server.crt"), join(dir, "othername.crt"))
        .replace(join(dir, "server.key"), join(dir, "othername.key")),
    );
    run(asServerUser([`${PG_BIN}/pg_ctl`, "-D", data, "reload"]));
    const ca = join(dir, "ca.crt");
    // The reload is asynchronous: wait until a verify-full connection is refused (bounded).
    let refused = false;
    for (let i = 0; i < 50 && !refused; i++) {
      refused = await sslInUse(url(`sslmode=verify-full&sslrootcert=${ca}`)).then(
        () => false,
        () => true,
      );
      if (!refused) await Bun.sleep(100);
    }
    expect(refused).toBe(true);
    expect(await sslInUse(url(`sslmode=verify-ca&sslrootcert=${ca}`))).toBe(true);
    expect(await sslInUse(url("sslmode=require"))).toBe(true);
    // libpq: require + sslrootcert verifies the chain, so the wrong CA fails.
    await expect(sslInUse(url(`sslmode=require&sslrootcert=${join(dir, "wrongca.crt")}`))).rejects.toThrow();
  });
});

describe("sslOptions (parsing)", () => {
  test("client-only parameters never reach the server; other parameters stay", () => {
    const ca = join(dir, "ca.crt");
    const { url: u, ssl } = sslOptions(
      `postgres://u:secret@db.example:5432/app?sslmode=verify-full&sslrootcert=${ca}&application_name=x`,
    );
    expect(u).toBe("postgres://u:secret@db.example:5432/app?application_name=x");
    expect(typeof ssl).toBe("object");
    expect((ssl as { servername?: string }).servername).toBe("db.example");
    expect((ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized).toBe(true);
  });

  test.each([
    ["", false],
    ["?sslmode=disable", false],
    ["?sslmode=prefer", "prefer"],
    ["?sslmode=allow", "prefer"],
    ["?sslmode=require", "require"],
  ])("mode %p → %p", (q, want) => {
    expect(sslOptions(`postgres://h/db${q}`).ssl).toBe(want as never);
  });

  test("missing or non-PEM sslrootcert: one clear line, no password", () => {
    const missing = () =>
      sslOptions("postgres://u:hunter2@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
    expect(missing).toThrow(DatabaseTlsError);
    expect(missing).toThrow('DATABASE_URL: sslrootcert file "/nonexistent/ca.pem" cannot be read');
    writeFileSync(join(dir, "garbage.pem"), "not a certificate");
    expect(() =>
      sslOptions(`postgres://h/db?sslmode=verify-full&sslrootcert=${join(dir, "garbage.pem")}`),
    ).toThrow("is not a PEM file");
    try {
      missing();
    } catch (err) {
      expect(String(err)).not.toContain("hunter2");
    }
  });

  test("unknown sslmode is refused", () => {
    expect(() => sslOptions("postgres://h/db?sslmode=maybe")).toThrow("sslmode must be one of");
  });
});
