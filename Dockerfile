# syntax=docker/dockerfile:1.7
# PayBridge image: build the single executable with Bun, run it alone on distroless.
#
#   docker build -t paybridge:dev .                 # runtime image (last stage)
#   docker build --target test .                    # optional: static checks inside the build image
#   docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) \
#                --build-arg BUILD_TIME=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t paybridge:X .
#
# Base images are pinned by tag AND digest: a re-pushed tag cannot change what ships, and a
# rebuild of one commit gives the same base. The digests below were written on a machine with
# no registry access and are placeholders in the right format: refresh BOTH before the first
# build (and on every base-image update) with
#   docker buildx imagetools inspect oven/bun:1.4.4-debian --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/base-debian12:nonroot --format '{{json .Manifest.Digest}}'
# (see docs/operations.md, "Building the image"). The Bun tag must equal BUN_VERSION in the Makefile.

# ---- deps: the official Debian-based Bun image (the binary links glibc, so not alpine) ----
FROM oven/bun:1.4.4-debian@sha256:0000000000000000000000000000000000000000000000000000000000000000 AS deps
WORKDIR /src
# The build goes through `make build`, exactly as in CI; the Bun image ships without make.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
COPY package.json bun.lock ./
# The marker is what the Makefile's deps target produces, so `make build` does not reinstall.
RUN bun install --frozen-lockfile \
 && touch node_modules/.installed

# ---- build: compile dist/paybridge (no node_modules, migrations or config needed at run time) ----
FROM deps AS build
COPY . .
ARG REVISION=unknown
ARG BUILD_TIME=
RUN make build REVISION="${REVISION}" ${BUILD_TIME:+BUILD_TIME="${BUILD_TIME}"} \
 && ./dist/paybridge version

# ---- test (optional, never part of the default target): checks that need no services ----
# The full suite needs PostgreSQL, NATS and Redis and runs with `make test` (.ci/run).
FROM build AS test
RUN bun run typecheck \
 && bun run lint \
 && bun test test/deploy

# ---- runtime: glibc + CA certificates + tzdata, no shell, no package manager ----
FROM gcr.io/distroless/base-debian12:nonroot@sha256:0000000000000000000000000000000000000000000000000000000000000000 AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG BUILD_TIME=
ARG SOURCE_URL=https://github.com/example-org/paybridge
LABEL org.opencontainers.image.title="paybridge" \
      org.opencontainers.image.description="PayBridge wallet and payments service (API, metrics, probes, migrator in one executable)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${BUILD_TIME}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.documentation="${SOURCE_URL}/blob/main/docs/operations.md" \
      org.opencontainers.image.base.name="gcr.io/distroless/base-debian12:nonroot"
# Only the executable. Owned by root and not writable, so the process (uid 65532) cannot
# replace itself; it needs no writable directory, so a read-only root filesystem works.
COPY --from=build --chown=0:0 --chmod=0555 /src/dist/paybridge /paybridge
ENV PAYBRIDGE_ENV=production
USER 65532:65532
# 8080: API (PORT). 9090: /metrics and probes when MANAGEMENT_PORT=9090 (the manifests set it).
EXPOSE 8080 9090
# No HEALTHCHECK: there is no shell or curl in the image; orchestrators probe /live and /ready.
ENTRYPOINT ["/paybridge"]
CMD ["serve"]
