//! Ordinary development commands, as Python, Node, Rust, Go and web developers and coding
//! agents run them: every one is allowed in the run's world (network through the proxy,
//! processes scoped to the run's pid namespace). Issue 9 found 20 of 129 such commands refused;
//! the policy refuses what is dangerous, not what it merely cannot evaluate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox::{CommandPolicy, PolicyContext, ProjectRoot};

/// The list is also in `/work/wt/notes/policy.md` with the counts before and after.
pub const DEV_COMMANDS: &[&str] = &[
    // Python
    "python3 -m venv .venv",
    "python3 -m venv .venv && .venv/bin/pip install -e .",
    ". .venv/bin/activate && pip install -r requirements.txt",
    "source .venv/bin/activate && pytest -q",
    "pip install -e '.[dev]'",
    "pip install requests==2.31.0",
    "pip freeze > requirements.txt",
    "python3 -m pip install --upgrade pip",
    "pytest -q",
    "pytest -x -k test_login tests/",
    "python3 -m pytest --maxfail=1 -q",
    "pytest --cov=src --cov-report=term-missing",
    "python3 -m unittest discover -s tests",
    "python3 -c 'import sys; print(sys.version)'",
    "python3 -c 'import multiprocessing as m; print(m.Pool(2).map(abs, [-1, 2]))'",
    "python3 - <<'EOF'\nimport json\nprint(json.dumps({\"a\": 1}))\nEOF",
    "python3 -m http.server 8000 &",
    "python3 manage.py migrate",
    "python3 app.py &",
    "python3 -m json.tool data.json",
    "ruff check . && black --check .",
    "mypy src",
    "coverage run -m pytest && coverage report",
    "export DATABASE_URL=sqlite:///app.db && python3 manage.py migrate",
    "PYTHONPATH=src python3 -m app",
    // Node
    "npm install",
    "npm ci",
    "npm install --save-dev vitest",
    "npm run dev &",
    "npm run dev > dev.log 2>&1 & echo $! > dev.pid",
    "npm run build",
    "npm test -- --watch=false",
    "npm run lint -- --fix",
    "npm --prefix frontend run build",
    "npx vitest run",
    "npx tsc --noEmit",
    "npx eslint . --ext .ts",
    "npx prettier --write src",
    "npx playwright test",
    "node -e 'console.log(1)'",
    "node --test",
    "node server.js &",
    "node <<'EOF'\nconsole.log(process.version)\nEOF",
    "env PORT=4000 node server.js &",
    "yarn install",
    "pnpm install",
    "NODE_OPTIONS=--max-old-space-size=4096 npm run build",
    "timeout 30 npm test",
    // Rust
    "cargo build",
    "cargo test",
    "cargo build --release && ./target/release/app --help",
    "cargo clippy -- -D warnings",
    "cargo fmt --check",
    "cargo run -- --port 8080 &",
    "RUST_BACKTRACE=1 cargo test -- --nocapture",
    "cargo add serde --features derive",
    // Go
    "go test ./...",
    "go test -run TestLogin -v ./internal/...",
    "go build -o bin/server ./cmd/server",
    "go vet ./...",
    "gofmt -l .",
    "go mod tidy",
    "go run ./cmd/server &",
    // Builds and scripts
    "make",
    "make test",
    "make -j4 build",
    "chmod +x ./script.sh",
    "chmod +x init.sh && ./init.sh",
    "./init.sh",
    "bash init.sh",
    "sh ./scripts/setup.sh",
    "set -euo pipefail; npm test",
    "test -f package.json && npm install",
    "[ -d .venv ] || python3 -m venv .venv",
    "for f in tests/*.py; do python3 \"$f\"; done",
    // Reading and searching
    "sed -n '1,40p' src/app.py",
    "head -n 50 README.md",
    "tail -n 100 server.log",
    "ls -la",
    "wc -l src/*.py",
    "jq '.dependencies' package.json",
    "jq -r '.scripts | keys[]' package.json",
    "find . -name '*.py' -not -path './.venv/*'",
    "find . -name node_modules -prune -o -name '*.js' -print",
    "find src -name '*.rs' | xargs wc -l",
    "grep -rn 'TODO' src/",
    "grep -rn --include='*.ts' useState src",
    "rg -n 'fn main' src",
    "diff -u a.txt b.txt",
    "awk '{print $1}' access.log | sort | uniq -c | sort -rn | head",
    "awk -F, 'NR>1 {sum+=$3} END {print sum}' data.csv",
    "gunzip -c data.json.gz | jq .",
    "tree -L 2 src",
    "du -sh node_modules",
    "df -h .",
    "which python3 node cargo go",
    "date +%Y-%m-%d",
    "nproc",
    "sha256sum dist/*.tar.gz",
    "readarray -t files < <(git ls-files)",
    "read -r version < VERSION",
    // Editing files
    "sed -i 's/foo/bar/g' src/app.py",
    "sed -i.bak -e 's/a/b/' config.ini",
    "patch -p1 < fix.patch",
    "mkdir -p src/{models,views,controllers}",
    "touch \"$TMPDIR/scratch\"",
    "cp README.md \"$PWD/copy.md\"",
    "mkdir -p \"$TMPDIR/build\" && cd \"$TMPDIR/build\"",
    "cat > src/config.py <<'EOF'\nDEBUG = True\nEOF",
    "cat <<EOF > .env\nPORT=3000\nHOST=$HOST\nEOF",
    "printf '%s\\n' a b c > list.txt",
    "tee output.log < input.txt",
    "rm -rf node_modules dist build",
    "rm -rf .pytest_cache __pycache__",
    "find . -type f -name '*.pyc' -delete",
    "mv src/old.py src/new.py",
    "cp -r templates/ build/templates/",
    "ln -s ../shared src/shared",
    "sort -u names.txt -o names.txt",
    "base64 -d encoded.txt > decoded.bin",
    "mktemp -d",
    // Archives
    "tar xzf archive.tar.gz",
    "tar czf dist.tar.gz dist/",
    "unzip -o data.zip -d data",
    "zip -r site.zip public",
    // Local servers and processes
    "curl -s http://127.0.0.1:8000/",
    "curl -sf http://localhost:3000/api/health || echo down",
    "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/",
    "curl -X POST -H 'Content-Type: application/json' -d '{\"a\":1}' http://127.0.0.1:8000/api",
    "wget -qO- http://127.0.0.1:8000/",
    "sleep 2 && curl -s http://127.0.0.1:8000/",
    "while ! curl -s http://127.0.0.1:3000 >/dev/null; do sleep 1; done",
    "ps aux | grep node",
    "pkill -f 'node server.js'",
    "kill %1",
    "kill $(cat server.pid)",
    "lsof -i :3000",
    "ss -ltnp",
    "jobs -l",
    "wait",
    // Databases
    "sqlite3 app.db 'select 1'",
    "sqlite3 app.db '.tables'",
    "sqlite3 app.db < schema.sql",
    "sqlite3 app.db <<'EOF'\nCREATE TABLE t(x);\n.schema\nEOF",
    // git
    "git status",
    "git diff",
    "git log --oneline -10",
    "git add -A && git commit -m 'Add login'",
    "git diff --stat HEAD~1",
    "git show HEAD:src/app.py",
    "git stash && git stash pop",
    "git checkout -- src/app.py",
    "git restore src/app.py",
    "git checkout -b feature/login",
    "git -c user.name=agent -c user.email=agent@example.com commit -m wip",
    "git reset --hard",
    "git blame src/app.py",
    "git rm --cached secrets.txt",
    "git mv a.py b.py",
    "git clean -fdx build",
    "git tag v1.0",
    "git log -p -- src/app.py",
    "echo \"$HOME\"",
    "xargs -n1 < files.txt echo",
];

fn world() -> PolicyContext {
    PolicyContext {
        allow_network: true,
        processes_scoped: true,
        temp_dir: Some("/tmp".into()),
    }
}

fn refused_in(context: &PolicyContext) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    let root = ProjectRoot::new(dir.path()).unwrap();
    let policy = CommandPolicy::default();
    DEV_COMMANDS
        .iter()
        .filter_map(|command| {
            policy
                .check(command, &root, context)
                .err()
                .map(|e| format!("{command}\n    {}", e.reason))
        })
        .collect()
}

#[test]
fn ordinary_development_commands_are_allowed() {
    assert!(DEV_COMMANDS.len() >= 100, "{} commands", DEV_COMMANDS.len());
    let refused = refused_in(&world());
    assert!(
        refused.is_empty(),
        "{} of {} refused:\n{}",
        refused.len(),
        DEV_COMMANDS.len(),
        refused.join("\n")
    );
}

/// Without a pid namespace (the fallback confinement) only the process tools are refused, and
/// without network only the network subcommands.
#[test]
fn in_the_fallback_confinement_only_process_and_network_tools_are_refused() {
    let refused = refused_in(&PolicyContext::default());
    eprintln!(
        "fallback, offline: {} of {} refused",
        refused.len(),
        DEV_COMMANDS.len()
    );
    for r in &refused {
        assert!(
            r.contains("process namespace") || r.contains("network"),
            "refused for another reason: {r}"
        );
    }
}
