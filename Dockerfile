# syntax=docker/dockerfile:1
# The rollprobe binary in a small image, for the in-cluster probes of deploy/kubernetes/.
#
#   docker build -t rollprobe:0.1.0 .
#
# Stage 1 builds the release binary with the locked dependencies, on the toolchain the
# tests were run with; stage 2 is Debian slim with CA certificates (https targets, the API
# server) and the binary only. `sleep` and `tar` come with the base image: the manifests'
# `hold` container and `kubectl cp` use them.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p probe-cli \
    && install -D target/release/rollprobe /out/rollprobe

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/rollprobe /usr/local/bin/rollprobe
# The probe needs no privileges: a plain user, the same uid in every container.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin rollprobe
USER 10001
ENTRYPOINT ["rollprobe"]
CMD ["--help"]
