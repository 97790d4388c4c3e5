# The loopwright image: the binary, and what the agent's commands need to build and check a
# Python or shell project (git, bash, python3; Chromium optional for web apps' browser checks).
#
#   docker build -t loopwright .
#   docker build -t loopwright:chromium --build-arg WITH_CHROMIUM=true .
#   docker run --rm -w /usr/share/loopwright loopwright run --project-dir /tmp/todo-demo \
#     --spec examples/todo-cli/app_spec.txt --model replay/examples/todo-cli/session.cassette.jsonl
#
# The sandbox needs Landlock, seccomp and unprivileged user namespaces from the container
# runtime; what to allow, and what loopwright does without them, is in docs/kubernetes.md
# ("What the sandbox needs from the container"). Other toolchains (node, go, a JDK): build
# FROM this image and install them under /usr or /opt, which the agent's commands can read.

ARG RUST_VERSION=1.89
ARG DEBIAN_RELEASE=bookworm

# --- build: the README's `cargo build --release`, with the lock file as committed ---
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin loopwright \
    && install -D -m 0755 target/release/loopwright /out/loopwright

# --- runtime ---
FROM debian:${DEBIAN_RELEASE}-slim
ARG WITH_CHROMIUM=false
# tini is pid 1: it reaps orphaned processes and passes SIGTERM on to loopwright (a process
# that is pid 1 itself ignores signals it has no handler for).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       bash ca-certificates git python3 tini \
    && if [ "$WITH_CHROMIUM" = true ]; then \
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
       fi \
    && rm -rf /var/lib/apt/lists/*
# Not root: as root, a confined command could still change the mode and owner of root's files
# (README, "What the sandbox does and does not do").
RUN groupadd --gid 10001 loopwright \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/loopwright \
       --shell /bin/bash loopwright \
    && mkdir -p /work && chown loopwright:loopwright /work
COPY --from=build /out/loopwright /usr/local/bin/loopwright
# The recorded demos, for a smoke test of the image (see the top of this file).
COPY examples /usr/share/loopwright/examples
USER 10001:10001
ENV HOME=/home/loopwright
WORKDIR /work
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/loopwright"]
CMD ["--help"]
