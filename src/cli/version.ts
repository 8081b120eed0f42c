import pkg from "../../package.json" with { type: "json" };

// Injected at build time with --define (see Makefile); "unknown" in a source checkout.
declare const PAYBRIDGE_REVISION: string | undefined;
declare const PAYBRIDGE_BUILD_TIME: string | undefined;

export const BUILD_INFO = Object.freeze({
  version: pkg.version,
  revision: typeof PAYBRIDGE_REVISION === "string" ? PAYBRIDGE_REVISION : "unknown",
  buildTime: typeof PAYBRIDGE_BUILD_TIME === "string" ? PAYBRIDGE_BUILD_TIME : "unknown",
  bunVersion: Bun.version,
});

export function versionText(): string {
  return `paybridge ${BUILD_INFO.version}\ncommit ${BUILD_INFO.revision}\nbuilt ${BUILD_INFO.buildTime}\nbun ${BUILD_INFO.bunVersion}\n`;
}
