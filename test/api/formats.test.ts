// The "uuid" string format keeps the rule clients were held to (zod's uuid(): RFC 9562
// versions 1-8 with the RFC variant, nil and max), checked by one precompiled expression
// instead of the per-call zod schema @elysiajs/openapi registers (src/http/formats.ts).
import { expect, test } from "bun:test";
import { FormatRegistry } from "elysia/type-system";
import "../../src/app.ts";

// Only the app is imported: the check must arrive through the app's own imports.
const isUuidFormat = FormatRegistry.Get("uuid")!;

test("the registered uuid check is ours, after every module (the OpenAPI plugin included) has loaded", () => {
  expect(isUuidFormat.name).toBe("isUuidFormat");
});

test("uuid format: RFC 9562 versions 1-8 with the RFC variant, nil and max; nothing else", () => {
  for (const ok of [
    "01a226f0-9908-72d7-9951-6ef9c177192b",
    "123e4567-e89b-12d3-a456-426614174000",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "01A226F0-9908-72D7-B951-6EF9C177192B",
  ]) {
    expect(isUuidFormat(ok)).toBe(true);
  }
  for (const bad of [
    "",
    "not-a-uuid",
    "01a226f0-9908-02d7-9951-6ef9c177192b", // version 0
    "01a226f0-9908-92d7-9951-6ef9c177192b", // version 9
    "01a226f0-9908-72d7-c951-6ef9c177192b", // not the RFC variant
    "urn:uuid:01a226f0-9908-72d7-9951-6ef9c177192b",
    "{01a226f0-9908-72d7-9951-6ef9c177192b}",
    "01a226f0990872d799516ef9c177192b",
    "01a226f0-9908-72d7-9951-6ef9c177192b\n",
    " 01a226f0-9908-72d7-9951-6ef9c177192b",
  ]) {
    expect(isUuidFormat(bad)).toBe(false);
  }
});
