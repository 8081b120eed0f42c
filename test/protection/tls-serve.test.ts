// `paybridge serve` speaking HTTPS with TLS_CERT_FILE / TLS_KEY_FILE (a self-signed
// certificate made here with openssl), and refusing to start on unusable files.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { TEST_JWT_SECRET } from "./helpers.ts";
import { binaryPath, runBinary, type Served, startServe } from "./serve-process.ts";

const dir = mkdtempSync(join(tmpdir(), "pb-tls-"));
const certFile = join(dir, "cert.pem");
const keyFile = join(dir, "key.pem");
let db: TestDatabase;
const running: Served[] = [];

function openssl(args: string[]) {
  const p = Bun.spawnSync(["openssl", ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${p.stderr.toString()}`);
}

/** Building the binary (when stale) takes a while on 2 shared cores. */
const BUILD_TIMEOUT_MS = 300_000;
const TEST_TIMEOUT_MS = 30_000;
setDefaultTimeout(TEST_TIMEOUT_MS);

beforeAll(async () => {
  binaryPath();
  db = await createTestDatabase("pbtls");
  openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ]);
  openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=other",
    "-keyout",
    join(dir, "other-key.pem"),
    "-out",
    join(dir, "other-cert.pem"),
  ]);
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  for (const s of running) await s.stop();
  rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

const env = (extra: Record<string, string>) => ({
  DATABASE_URL: db.url,
  JWT_SECRET: TEST_JWT_SECRET,
  OUTBOX_RELAY: "off",
  ...extra,
});

describe("serve over TLS", () => {
  test("HTTPS /live answers with the configured certificate; plain HTTP on that port does not", async () => {
    const s = await startServe(env({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile }));
    running.push(s);
    const ca = await Bun.file(certFile).text();
    const res = await fetch(`https://127.0.0.1:${s.port}/live`, { tls: { ca } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe("pass");
    const byName = await fetch(`https://localhost:${s.port}/live`, { tls: { ca } });
    expect(byName.status).toBe(200);
    // A client that does not trust this certificate refuses the connection.
    await expect(fetch(`https://127.0.0.1:${s.port}/live`)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${s.port}/live`).then((r) => r.status)).rejects.toThrow();
    expect(await s.stop()).toBe(0);
  });
});

describe("serve refuses unusable TLS files: exit 1 with one clear line", () => {
  const refuse = async (extra: Record<string, string>) => {
    const r = await runBinary(["serve"], env({ PORT: "0", HOST: "127.0.0.1", ...extra }));
    expect(r.exitCode).toBe(1);
    expect(r.stdout).not.toContain('"msg":"listening"');
    return r.stderr;
  };

  test("missing certificate file", async () => {
    const err = await refuse({ TLS_CERT_FILE: join(dir, "nope.pem"), TLS_KEY_FILE: keyFile });
    expect(err).toContain("TLS_CERT_FILE");
    expect(err).toContain("nope.pem");
  });

  test("missing key file", async () => {
    const err = await refuse({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: join(dir, "nokey.pem") });
    expect(err).toContain("TLS_KEY_FILE");
  });

  test("a file that is not PEM", async () => {
    writeFileSync(join(dir, "garbage.pem"), "this is not a certificate\n");
    const err = await refuse({ TLS_CERT_FILE: join(dir, "garbage.pem"), TLS_KEY_FILE: keyFile });
    expect(err).toMatch(/TLS_CERT_FILE.*not a PEM/);
  });

  test("PEM markers around garbage", async () => {
    writeFileSync(
      join(dir, "broken.pem"),
      "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    const err = await refuse({ TLS_CERT_FILE: join(dir, "broken.pem"), TLS_KEY_FILE: keyFile });
    expect(err.trim().split("\n")).toEqual([expect.stringMatching(/^paybridge serve: .*DECODE_ERROR/)]);
  });

  test("a key that does not belong to the certificate", async () => {
    const err = await refuse({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: join(dir, "other-key.pem") });
    expect(err.trim().split("\n")).toEqual([
      expect.stringMatching(/^paybridge serve: .*KEY_VALUES_MISMATCH/),
    ]);
  });

  test("only one of the pair", async () => {
    const err = await refuse({ TLS_CERT_FILE: certFile });
    expect(err).toContain("TLS_CERT_FILE and TLS_KEY_FILE: set both or neither");
  });
});
