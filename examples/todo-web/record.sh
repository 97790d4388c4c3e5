#!/usr/bin/env bash
# Re-records the web demo's cassette: serves model-script.json from testkit's fake model server
# and runs loopwright against it with --record. The checks drive headless Chromium, so
# `chromium` must be installed. Run from the repository root; extra arguments go to
# `loopwright run` (where commands cannot get a network namespace of their own, pass
# `--network open` so the app can listen on 127.0.0.1).
set -euo pipefail
here=examples/todo-web
work=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
command -v chromium >/dev/null || { echo "record.sh: chromium is not installed" >&2; exit 1; }
cargo build -q --release -p loopwright -p testkit
./target/release/testkit-server --script "$here/model-script.json" > "$work/server.out" &
server_pid=$!
for _ in $(seq 50); do grep -q listening "$work/server.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/server.out")
rm -f "$here/session.cassette.jsonl"
ANTHROPIC_BASE_URL="$url" ANTHROPIC_API_KEY=testkit \
  ./target/release/loopwright run --project-dir "$work/project" --state-dir "$work/state" \
  --spec "$here/app_spec.txt" --model anthropic/claude-sonnet-4-5 \
  --record "$here/session.cassette.jsonl" "$@"
echo "recorded $(wc -l < "$here/session.cassette.jsonl") responses into $here/session.cassette.jsonl"
