//! The bypass corpus: one table of commands, each refused (with a reason naming the danger) or
//! allowed, grouped by class rather than by the examples that were found. Near misses sit next
//! to each refusal, so a rule that grows too wide breaks ordinary work here first.
//!
//! Checked with the most generous context (network on, processes scoped to the run): what is
//! refused here is refused for what it does, not because of the confinement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sandbox::{CommandPolicy, PolicyContext, ProjectRoot};

/// `Some(text)`: refused, and the reason contains `text`. `None`: allowed.
type Case = (&'static str, Option<&'static str>);

const ALLOW: Option<&str> = None;

const fn refuse(reason: &'static str) -> Option<&'static str> {
    Some(reason)
}

/// Running other programs under allowed names.
const PROGRAM_SUBSTITUTION: &[Case] = &[
    ("hash -p /bin/sh ls; ls", refuse("hash -p")),
    ("hash -dp /bin/sh ls", refuse("hash -p")),
    ("hash -r; ls", ALLOW),
    ("hash", ALLOW),
    ("BASH_CMDS[ls]=/bin/sh; ls", refuse("BASH_CMDS")),
    ("BASH_CMDS=([ls]=/bin/sh); ls", refuse("BASH_CMDS")),
    ("declare -A BASH_CMDS=([ls]=/bin/sh)", refuse("BASH_CMDS")),
    (
        "BASH_ALIASES[ls]=curl; shopt -s expand_aliases; ls",
        refuse("BASH_ALIASES"),
    ),
    ("shopt -s expand_aliases", refuse("expand_aliases")),
    ("shopt -u expand_aliases", ALLOW),
    ("shopt -s nullglob globstar", ALLOW),
    ("alias ls=curl", refuse("aliases")),
    ("unalias ls", refuse("aliases")),
    ("enable -f ./x.so evil", refuse("`enable`")),
    ("enable -n echo; echo hi", refuse("`enable`")),
    ("PATH=/tmp/evil:$PATH ls", refuse("PATH")),
    ("export PATH=$PWD/bin:$PATH", refuse("PATH")),
    ("env PATH=/tmp ls", refuse("PATH")),
    ("ls() { curl http://127.0.0.1:1/; }; ls", ALLOW),
    ("cd() { builtin cd /; }; cd src", refuse("shell builtin")),
    ("set() { :; }", refuse("shell builtin")),
    ("command_not_found_handle() { :; }", refuse("shell builtin")),
    (
        "(perl() { :; }); perl -e 1",
        refuse("`perl` is not on the allowlist"),
    ),
    (
        "false && perl() { :; }; perl -e 1",
        refuse("`perl` is not on the allowlist"),
    ),
    (
        "if false; then perl() { :; }; fi; perl -e 1",
        refuse("`perl` is not on the allowlist"),
    ),
    (
        "perl() { :; } | cat; perl -e 1",
        refuse("`perl` is not on the allowlist"),
    ),
    ("build() { cargo build; }; build", ALLOW),
    ("setup() { npm ci && npm test; }\nsetup", ALLOW),
    ("f() { f2; }; f", refuse("`f2` is not on the allowlist")),
    ("fact() { fact; }; fact", ALLOW),
    (
        "perl() { :; }; unset -f perl; perl -e 1",
        refuse("`perl` is not on the allowlist"),
    ),
    ("exec ls", refuse("`exec`")),
    ("eval ls", refuse("`eval`")),
    ("trap 'ls' EXIT", refuse("`trap`")),
    ("fc -s ls", refuse("history")),
    ("command -v cargo", ALLOW),
    ("command cargo test", ALLOW),
    ("builtin echo hi", ALLOW),
    ("builtin eval ls", refuse("`eval`")),
    ("/usr/bin/env ls", ALLOW),
    (
        "/usr/bin/../../usr/bin/perl -e 1",
        refuse("neither inside the project"),
    ),
];

/// Setting variables that change what runs, directly or indirectly.
const INDIRECT_ASSIGNMENT: &[Case] = &[
    ("declare -n ref=PATH; ref=/tmp", refuse("name reference")),
    ("typeset -n r=IFS", refuse("name reference")),
    ("local -n r=x", refuse("name reference")),
    ("declare -n ref; ref=PATH", refuse("name reference")),
    ("printf -v PATH %s /tmp", refuse("PATH")),
    ("printf -vPATH %s /tmp", refuse("PATH")),
    ("printf -v 'BASH_CMDS[ls]' %s /bin/sh", refuse("BASH_CMDS")),
    ("printf -v \"$X\" %s /tmp", refuse("computed")),
    ("printf -v out '%s' hello", ALLOW),
    ("printf '%s\\n' -v", ALLOW),
    ("read PATH < file", refuse("PATH")),
    ("read -r IFS <<< x", refuse("IFS")),
    ("read -a BASH_CMDS < f", refuse("BASH_CMDS")),
    ("read -p 'name? ' -r name", ALLOW),
    ("read -r first rest < VERSION", ALLOW),
    ("mapfile PATH < f", refuse("PATH")),
    ("readarray -C 'rm -f x' -c 1 lines < f", refuse("-C")),
    ("mapfile -t lines < f", ALLOW),
    ("readarray -t files < <(git ls-files)", ALLOW),
    ("getopts ab PATH", refuse("PATH")),
    ("getopts ab opt", ALLOW),
    ("wait -p PATH", refuse("PATH")),
    ("wait -n", ALLOW),
    ("export -n PATH", refuse("PATH")),
    ("export -f myfunc", refuse("functions")),
    ("declare -x LD_PRELOAD=/tmp/x.so", refuse("LD_PRELOAD")),
    (
        "declare -gx GIT_SSH_COMMAND='rm -f x'",
        refuse("GIT_SSH_COMMAND"),
    ),
    ("typeset BASH_ENV=/tmp/x", refuse("BASH_ENV")),
    ("local IFS=,", refuse("IFS")),
    ("IFS=/; x=$PWD", refuse("IFS")),
    ("IFS=/ ls", refuse("IFS")),
    (
        "while IFS= read -r line; do echo \"$line\"; done < f",
        ALLOW,
    ),
    ("IFS=, read -ra parts <<< \"$csv\"", ALLOW),
    ("readonly PROMPT_COMMAND=x", refuse("PROMPT_COMMAND")),
    ("declare \"$NAME=/tmp\"", refuse("computed")),
    ("declare $X", refuse("computed")),
    ("export FOO=bar BAZ=$(pwd)", ALLOW),
    ("local x=1 y", ALLOW),
    ("declare -a arr=(1 2 3)", ALLOW),
    ("export NODE_ENV=production", ALLOW),
    ("export PYTHONPATH=src", ALLOW),
    ("export CDPATH=/", refuse("CDPATH")),
    ("CDPATH=/etc cd passwd", refuse("CDPATH")),
    ("GLOBIGNORE=x; rm -rf *", refuse("GLOBIGNORE")),
    ("for PATH in /tmp; do ls; done", refuse("PATH")),
    ("for f in *.py; do echo $f; done", ALLOW),
    ("echo ${PATH:=/tmp}", refuse("PATH")),
    ("echo ${!ref:=x}", refuse("named by another variable")),
    ("echo ${!prefix@}", ALLOW),
    ("echo ${name:-default}", ALLOW),
    ("echo ${x@P}", refuse("prompt")),
    (
        "set -k; git status GIT_CONFIG_PARAMETERS=x",
        refuse("keyword"),
    ),
    ("set -o keyword", refuse("keyword")),
    ("bash -k -c 'git status GIT_DIR=/tmp'", refuse("keyword")),
    ("set -H", refuse("history")),
    ("set -euo pipefail", ALLOW),
    ("set -x; set +e", ALLOW),
    ("set -- a b c", ALLOW),
    ("set -o posix", ALLOW),
    (
        "GIT_CONFIG_PARAMETERS=\"'core.pager=sh'\" git log",
        refuse("GIT_CONFIG_PARAMETERS"),
    ),
    (
        "GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.pager GIT_CONFIG_VALUE_0=x git log",
        refuse("GIT_CONFIG"),
    ),
    ("GIT_EXTERNAL_DIFF=x git diff", refuse("GIT_EXTERNAL_DIFF")),
    (
        "GIT_SSH_COMMAND='sh -c x' git fetch",
        refuse("GIT_SSH_COMMAND"),
    ),
    ("GIT_DIR=/tmp/x git status", refuse("GIT_DIR")),
    (
        "GIT_AUTHOR_NAME=bot GIT_COMMITTER_NAME=bot git commit -m x",
        ALLOW,
    ),
    ("LD_LIBRARY_PATH=/tmp ls", refuse("LD_LIBRARY_PATH")),
    ("BASH_ENV=x.sh bash init.sh", refuse("BASH_ENV")),
    ("ENV=x sh init.sh", refuse("ENV")),
    ("PS4='$(rm x)' bash -x init.sh", refuse("PS4")),
    ("PAGER='sh -c x' git log", refuse("PAGER")),
    ("EDITOR=vim git commit", refuse("EDITOR")),
    (
        "npm_config_script_shell=/tmp/x npm run build",
        refuse("npm_config_script_shell"),
    ),
    (
        "NODE_OPTIONS='--require ./x.js' node app.js",
        refuse("NODE_OPTIONS"),
    ),
    (
        "NODE_OPTIONS=--max-old-space-size=4096 npm run build",
        ALLOW,
    ),
    ("RUSTC_WRAPPER=./x cargo build", refuse("RUSTC_WRAPPER")),
    (
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=./x cargo run",
        refuse("RUNNER"),
    ),
    ("RUST_LOG=debug cargo run", ALLOW),
    ("CC=clang make", ALLOW),
    ("HOME=/tmp git config --global user.name x", refuse("HOME")),
    ("TMPDIR=.git/hooks python3 x.py", refuse("TMPDIR")),
    ("env -u HOME ls", ALLOW),
    ("env --split-string='rm -f x'", refuse("env -S")),
    ("env --sp 'rm -f x'", refuse("env -S")),
    ("env -C / ls", refuse("env -C")),
    ("env --ch=/ ls", refuse("env -C")),
    ("xargs --process-slot-var=PATH echo < f", refuse("PATH")),
    ("make SHELL=/tmp/x", refuse("SHELL")),
    ("make PATH=/tmp test", refuse("PATH")),
    ("make CFLAGS=-O2 -j4", ALLOW),
];

/// Shell options that change what globs match or how commands are read.
const SHELL_OPTIONS: &[Case] = &[
    ("shopt -s dotglob; rm -rf *", refuse("dotglob")),
    ("shopt -u globskipdots", refuse("globskipdots")),
    ("shopt -s globskipdots", ALLOW),
    ("shopt -s extglob", refuse("extglob")),
    ("shopt -s nocaseglob", refuse("nocaseglob")),
    ("shopt -s cdable_vars", refuse("cdable_vars")),
    ("shopt -s extdebug", refuse("extdebug")),
    ("shopt -q nullglob && echo on", ALLOW),
    ("shopt -o -s keyword", refuse("keyword")),
    ("bash -O expand_aliases init.sh", refuse("expand_aliases")),
    ("bash +O globskipdots init.sh", refuse("globskipdots")),
    ("bash -o keyword init.sh", refuse("keyword")),
    ("bash -o pipefail -c 'ls | wc -l'", ALLOW),
    ("bash -i", refuse("interactive")),
    ("bash -l init.sh", refuse("login")),
    ("bash --rcfile x.sh", refuse("not supported")),
    ("bash -e -x init.sh", ALLOW),
];

/// git configuration that runs programs, and git features that do.
const GIT_INJECTION: &[Case] = &[
    ("git -c core.pager=sh log", refuse("git -c")),
    ("git -c alias.x='!rm -rf .' x", refuse("git -c")),
    ("git -c core.sshCommand=x fetch", refuse("git -c")),
    ("git -c core.hooksPath=/tmp commit -m x", refuse("git -c")),
    ("git -c include.path=/tmp/x status", refuse("git -c")),
    ("git -c diff.external=x diff", refuse("git -c")),
    ("git -c filter.x.clean=x add .", refuse("git -c")),
    ("git -c init.templateDir=/tmp init", refuse("git -c")),
    (
        "git -c user.name=bot -c user.email=bot@example.com commit -m x",
        ALLOW,
    ),
    ("git -c color.ui=never log", ALLOW),
    ("git -c core.autocrlf=false status", ALLOW),
    ("git --config-env=core.pager=X log", refuse("--config-env")),
    ("git --exec-path=/tmp status", refuse("--exec-path")),
    ("git --exec-path", ALLOW),
    ("git --git-dir=/tmp/x status", refuse("--git-dir")),
    ("git --work-tree=/ status", refuse("--work-tree")),
    ("git --bare init", refuse("--bare")),
    ("git config core.pager sh", refuse("git config")),
    ("git config core.fsmonitor x", refuse("git config")),
    ("git config alias.st '!sh'", refuse("git config")),
    ("git config --add include.path /tmp/x", refuse("git config")),
    ("git config set core.editor vim", refuse("git config")),
    ("git config --global user.name x", refuse("--global")),
    ("git config --glob user.name x", refuse("--global")),
    ("git config --file /tmp/x user.name x", refuse("--file")),
    ("git config user.name 'Agent'", ALLOW),
    ("git config user.email a@b.c", ALLOW),
    ("git config --get user.name", ALLOW),
    ("git config --list", ALLOW),
    ("git config --unset core.pager", ALLOW),
    (
        "git clone --config core.hooksPath=/tmp http://x/y.git",
        refuse("git clone --config"),
    ),
    (
        "git clone -c core.sshCommand=x http://x/y.git",
        refuse("git clone --config"),
    ),
    (
        "git fetch --upload-pack='rm -f x' origin",
        refuse("run another program"),
    ),
    (
        "git fetch --upload-p=x origin",
        refuse("run another program"),
    ),
    (
        "git push --receive-pack=x origin",
        refuse("run another program"),
    ),
    ("git clone ext::'sh -c x' d", refuse("run another program")),
    (
        "git archive --exec=x --remote=r HEAD",
        refuse("run another program"),
    ),
    ("git init --template=/tmp/t", refuse("run another program")),
    ("git init --templ=/tmp/t", refuse("run another program")),
    (
        "git init --separate-git-dir=/tmp/g",
        refuse("run another program"),
    ),
    ("git difftool", refuse("difftool")),
    ("git mergetool", refuse("mergetool")),
    ("git difftool --extcmd=x", refuse("run another program")),
    (
        "git filter-branch --tree-filter 'rm x' HEAD",
        refuse("history"),
    ),
    ("git submodule foreach 'rm -rf .'", refuse("foreach")),
    ("git bisect run make test", refuse("bisect run")),
    ("git bisect good", ALLOW),
    ("git grep -O foo", refuse("pager")),
    ("git grep --open-files-in-pager=x foo", refuse("pager")),
    ("git grep -n foo", ALLOW),
    (
        "git rebase --exec 'make test' HEAD~3",
        refuse("run another program"),
    ),
    ("git rebase --exe x main", refuse("run another program")),
    ("git rebase main", refuse("rewrites or discards history")),
    (
        "git diff --output=/etc/x",
        refuse("writes outside the project"),
    ),
    (
        "git diff --outp=/etc/x",
        refuse("writes outside the project"),
    ),
    ("git diff --output=changes.diff", ALLOW),
    (
        "git format-patch -o /tmp/x HEAD~1",
        refuse("writes outside the project"),
    ),
    ("git format-patch -o patches HEAD~1", ALLOW),
    ("git -C /etc status", refuse("outside the project")),
    ("git -C src status", ALLOW),
    (
        "git worktree add /tmp/elsewhere",
        refuse("writes outside the project"),
    ),
    (
        "git worktree add ../wt feature",
        refuse("writes outside the project"),
    ),
    ("git worktree add wt/feature", ALLOW),
    (
        "git clone http://127.0.0.1:9/r.git /etc/r",
        refuse("writes outside the project"),
    ),
    ("git clone http://127.0.0.1:9/r.git vendor/r", ALLOW),
    ("git log --oneline --graph --all", ALLOW),
    ("git -p log", ALLOW),
];

/// Options abbreviated as getopt_long allows, for every option rule.
const ABBREVIATIONS: &[Case] = &[
    (
        "sed --in-pl 's/a/b/' /etc/hosts",
        refuse("writes outside the project"),
    ),
    ("sed --in-place=.bak 's/a/b/' src/a.py", ALLOW),
    (
        "sed --i 's/a/b/' ../x",
        refuse("writes outside the project"),
    ),
    ("sed --expr='1e ls' f", refuse("`e`")),
    ("sed --exp='s/a/b/' f", ALLOW),
    (
        "cp --target-directory=/etc x",
        refuse("writes outside the project"),
    ),
    ("cp --target=/etc x", refuse("writes outside the project")),
    ("cp --tar /etc x", refuse("writes outside the project")),
    ("cp -t /etc x", refuse("writes outside the project")),
    ("cp -t/etc x", refuse("writes outside the project")),
    ("cp -rt /etc x", refuse("writes outside the project")),
    ("cp -t build src/a.py src/b.py", ALLOW),
    (
        "mv --target-directory=/tmp/x src",
        refuse("writes outside the project"),
    ),
    ("mv -t build a.txt", ALLOW),
    ("ln -t /etc x", refuse("writes outside the project")),
    ("sort --out=/etc/x f", refuse("writes outside the project")),
    ("sort -o/etc/x f", refuse("writes outside the project")),
    (
        "sort --compress-program=sh f",
        refuse("run another program"),
    ),
    ("sort --compress=sh f", refuse("run another program")),
    ("sort -u -o names.txt names.txt", ALLOW),
    (
        "tar --checkpoint=1 --checkpoint-action=exec=sh -cf a.tar src",
        refuse("run another program"),
    ),
    (
        "tar --checkpoint-a=exec=sh -cf a.tar src",
        refuse("run another program"),
    ),
    ("tar --to-c=sh -xf a.tar", refuse("run another program")),
    (
        "tar --use-compress-program=sh -xf a.tar",
        refuse("run another program"),
    ),
    ("tar --use=sh -xf a.tar", refuse("run another program")),
    ("tar -I sh -xf a.tar", refuse("run another program")),
    ("tar xIf sh a.tar", refuse("run another program")),
    (
        "tar --info-script=x -cf a.tar src",
        refuse("run another program"),
    ),
    (
        "tar --rsh-command=x -cf host:a.tar src",
        refuse("run another program"),
    ),
    ("tar -cf host:/a.tar src", refuse("another host")),
    ("tar --checkpoint=100 -czf a.tgz src", ALLOW),
    (
        "tar -xzf a.tgz -C /etc",
        refuse("writes outside the project"),
    ),
    (
        "tar --directory=/etc -xf a.tar",
        refuse("writes outside the project"),
    ),
    (
        "tar -czf /etc/a.tgz src",
        refuse("writes outside the project"),
    ),
    ("tar xzf archive.tar.gz", ALLOW),
    ("tar -xzf a.tgz -C vendor", ALLOW),
    ("tar -czf dist.tgz dist/", ALLOW),
    ("tar --remove-files -cf a.tar .git", refuse(".git")),
    ("zip -TT 'sh -c x' a.zip src", refuse("run another program")),
    (
        "zip --unzip-command=x -T a.zip src",
        refuse("run another program"),
    ),
    ("zip --unz=x -T a.zip src", refuse("run another program")),
    ("zip -rm a.zip .git", refuse(".git")),
    ("zip -r site.zip public", ALLOW),
    ("zip -T a.zip src", ALLOW),
    (
        "unzip -o data.zip -d /etc",
        refuse("writes outside the project"),
    ),
    ("unzip -o data.zip -d data", ALLOW),
    ("find . -files0-from list -delete", refuse("-files0-from")),
    (
        "find . -files0-from list -exec rm {} +",
        refuse("-files0-from"),
    ),
    (
        "find . -fprint /etc/x",
        refuse("writes outside the project"),
    ),
    (
        "find . -fprintf /etc/x '%p'",
        refuse("writes outside the project"),
    ),
    ("find . -name '*.py' -fprint files.txt", ALLOW),
    ("xargs --arg-file=list.txt echo", ALLOW),
    (
        "command time -o /etc/x ls",
        refuse("writes outside the project"),
    ),
    (
        "command time --out=/etc/x ls",
        refuse("writes outside the project"),
    ),
    (
        "npm run build --script-shell=/tmp/x",
        refuse("--script-shell"),
    ),
    ("npm run build --script-sh=/tmp/x", refuse("--script-sh")),
    ("npm config set script-shell /tmp/x", refuse("script-shell")),
    ("npm exec --call 'rm -f x'", refuse("--call")),
    ("npx --cal 'rm x'", refuse("npx -c")),
    ("npm --prefix frontend run build", ALLOW),
    (
        "cargo --config 'build.rustc-wrapper=\"x\"' build",
        refuse("cargo --config"),
    ),
    ("cargo --conf x build", refuse("cargo --config")),
    ("cargo build --release", ALLOW),
    (
        "wget --use-askpass=sh http://127.0.0.1/",
        refuse("run another program"),
    ),
    (
        "wget --use-a=sh http://127.0.0.1/",
        refuse("run another program"),
    ),
    (
        "wget -e use_askpass=sh http://127.0.0.1/",
        refuse("wget -e"),
    ),
    ("wget --exec=x http://127.0.0.1/", refuse("wget -e")),
    (
        "wget -O /etc/x http://127.0.0.1/",
        refuse("writes outside the project"),
    ),
    (
        "wget --output-doc=/etc/x http://127.0.0.1/",
        refuse("writes outside the project"),
    ),
    (
        "wget -P /etc http://127.0.0.1/",
        refuse("writes outside the project"),
    ),
    ("wget -qO- http://127.0.0.1:8000/", ALLOW),
    (
        "curl -o /etc/x http://127.0.0.1/",
        refuse("writes outside the project"),
    ),
    (
        "curl --output-dir /etc -O http://127.0.0.1/x",
        refuse("writes outside the project"),
    ),
    (
        "curl --output-d /etc -O http://127.0.0.1/",
        refuse("writes outside the project"),
    ),
    (
        "curl --outp /etc/x http://127.0.0.1/",
        refuse("writes outside the project"),
    ),
    (
        "curl -D /etc/h http://127.0.0.1/",
        refuse("writes outside the project"),
    ),
    (
        "curl --cookie-jar ~/.c http://127.0.0.1/",
        refuse("writes outside the project"),
    ),
    (
        "curl --unix-socket /var/run/docker.sock http://x/containers/json",
        refuse("Unix socket"),
    ),
    ("curl --unix /run/x.sock http://x/", refuse("Unix socket")),
    (
        "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/",
        ALLOW,
    ),
    ("curl -sSf -o out.json http://127.0.0.1:8000/api", ALLOW),
];

/// Tools that execute or write by themselves.
const SELF_EXECUTING: &[Case] = &[
    ("awk 'BEGIN { system(\"rm -f x\") }'", refuse("system()")),
    ("awk '{ print | \"sh\" }' f", refuse("pipe")),
    (
        "awk 'BEGIN { \"id\" | getline x; print x }'",
        refuse("getline"),
    ),
    ("awk 'BEGIN { print \"x\" |& \"sh\" }'", refuse("|&")),
    (
        "awk '{ print > \"/etc/x\" }' f",
        refuse("writes outside the project"),
    ),
    ("gawk -l ./x.so 'BEGIN{}'", refuse("shared library")),
    ("awk '@load \"x\"; BEGIN{}'", refuse("@load")),
    (
        "awk --dump-variables=/etc/x 'BEGIN{}'",
        refuse("writes outside the project"),
    ),
    ("awk '{ print > \"out.txt\" }' f", ALLOW),
    ("awk '{ print $1 > \"/dev/stderr\" }' f", ALLOW),
    ("awk -F, 'NR>1 {sum+=$3} END {print sum}' data.csv", ALLOW),
    ("awk '/a|b/ { n++ } END { print n }' f", ALLOW),
    ("awk '$3 > 5 { print $1 }' f", ALLOW),
    ("awk -f prog.awk data.txt", ALLOW),
    ("sed '1e rm -f x' f", refuse("`e`")),
    ("sed 's/x/id/e' f", refuse("`e`")),
    ("sed -n 'e id' f", refuse("`e`")),
    ("sed 'w /etc/x' f", refuse("writes outside the project")),
    (
        "sed 's/a/b/w /etc/x' f",
        refuse("writes outside the project"),
    ),
    (
        "sed -e '/x/W /etc/y' f",
        refuse("writes outside the project"),
    ),
    ("sed --sandbox 's/a/b/' f", ALLOW),
    ("sed 's/e/E/g' f", ALLOW),
    ("sed -n '/^exec/p' f", ALLOW),
    ("sed 's/a/b/w out.txt' f", ALLOW),
    ("sed -i 's/foo/bar/g' src/app.py", ALLOW),
    (
        "sed -i 's/foo/bar/' /etc/hosts",
        refuse("writes outside the project"),
    ),
    (
        "sed -ni 's/a/b/p' ../x",
        refuse("writes outside the project"),
    ),
    ("sed -f script.sed f", ALLOW),
    ("sqlite3 app.db '.shell rm -f x'", refuse(".shell")),
    ("sqlite3 app.db '.system id'", refuse(".shell")),
    ("sqlite3 app.db \".load ./x\"", refuse(".load")),
    (
        "sqlite3 app.db \"select load_extension('./x')\"",
        refuse("load_extension"),
    ),
    ("sqlite3 -cmd '.shell id' app.db", refuse(".shell")),
    (
        "sqlite3 app.db <<'EOF'\n.shell rm -f x\nEOF",
        refuse(".shell"),
    ),
    ("sqlite3 app.db '.output |sh'", refuse("|command")),
    (
        "sqlite3 app.db '.output /etc/x'",
        refuse("writes outside the project"),
    ),
    (
        "sqlite3 /etc/x.db 'select 1'",
        refuse("writes outside the project"),
    ),
    ("sqlite3 -safe app.db '.shell id'", ALLOW),
    ("sqlite3 app.db 'select 1'", ALLOW),
    ("sqlite3 app.db '.tables'", ALLOW),
    ("sqlite3 app.db < schema.sql", ALLOW),
    (
        "sqlite3 app.db <<'EOF'\nCREATE TABLE t(x);\n.schema\nEOF",
        ALLOW,
    ),
    ("find . -exec rm -rf {} +", refuse(".git")),
    (
        "find . -exec sh -c 'rm -rf \"$1\"' _ {} \\;",
        refuse(".git"),
    ),
    (
        "find . -exec perl -e 1 {} +",
        refuse("`perl` is not on the allowlist"),
    ),
    ("find . -ok sudo ls {} \\;", refuse("sudo")),
    ("find . -execdir mount {} \\;", refuse("isolation")),
    ("find . -name '*.tmp' -exec rm -f {} +", ALLOW),
    ("find src -name '*.rs' -exec wc -l {} +", ALLOW),
    ("find /etc -name '*.conf' -exec cat {} \\;", ALLOW),
    ("find /tmp/x -exec rm {} +", refuse("outside the project")),
    ("xargs sudo rm < list", refuse("sudo")),
    (
        "echo x | xargs perl -e 1",
        refuse("`perl` is not on the allowlist"),
    ),
    ("env perl -e 1", refuse("`perl` is not on the allowlist")),
    ("nice -n 5 mount /dev/x /mnt", refuse("isolation")),
    ("timeout 5 sudo ls", refuse("sudo")),
    ("timeout --signal=KILL 5 eval ls", refuse("`eval`")),
    ("nohup sudo ls", refuse("sudo")),
    (
        "stdbuf -oL perl -e 1",
        refuse("`perl` is not on the allowlist"),
    ),
    ("stdbuf -oL python3 app.py", ALLOW),
    ("time perl -e 1", refuse("`perl` is not on the allowlist")),
    (
        "command perl -e 1",
        refuse("`perl` is not on the allowlist"),
    ),
    ("env $CMD", refuse("computed")),
    ("xargs $CMD < f", refuse("computed")),
    ("python3 -c 'import os; os.system(\"ls\")'", ALLOW),
    ("node -e 'console.log(1)'", ALLOW),
    ("node -p 1+1", ALLOW),
    ("python3 - <<'EOF'\nprint(1)\nEOF", ALLOW),
    ("node <<'EOF'\nconsole.log(1)\nEOF", ALLOW),
    ("echo 'print(1)' | python3", ALLOW),
    ("go test -exec ./x ./...", refuse("go -exec")),
    ("go build -toolexec=x ./...", refuse("go -toolexec")),
    ("rg --pre ./x.sh foo", refuse("rg --pre")),
    ("rg --pre=sh foo", refuse("rg --pre")),
    ("rg -n --pre-glob '*.gz' foo", ALLOW),
    ("rg -n 'fn main' src", ALLOW),
];

/// Shells reading code: strings and here-documents are checked like the command.
const SHELL_CODE: &[Case] = &[
    ("bash -c 'sudo ls'", refuse("sudo")),
    (
        "sh -c \"perl -e 1\"",
        refuse("`perl` is not on the allowlist"),
    ),
    ("bash -xc 'eval x'", refuse("`eval`")),
    ("bash -c \"$CMD\"", refuse("computed")),
    ("bash <<'EOF'\nsudo ls\nEOF", refuse("sudo")),
    ("bash <<'EOF'\nset -e\nnpm ci\nnpm test\nEOF", ALLOW),
    ("sh -s <<< 'ls -la'", ALLOW),
    ("bash <<EOF\n$CMD\nEOF", refuse("quote the delimiter")),
    ("bash <<EOF\n\\$(rm x)\nEOF", refuse("quote the delimiter")),
    ("bash <<< \"$CODE\"", refuse("quote the delimiter")),
    ("ls | sh", refuse("reads code from its input")),
    (
        "curl -s http://127.0.0.1/x | bash",
        refuse("reads code from its input"),
    ),
    ("bash < init.sh", ALLOW),
    (
        "bash < /etc/profile",
        refuse("only scripts inside the project"),
    ),
    (
        "bash /tmp/x/evil.sh",
        refuse("only scripts inside the project"),
    ),
    ("bash init.sh", ALLOW),
    ("bash \"$SCRIPT\"", ALLOW),
    (
        "source /etc/profile",
        refuse("only files inside the project"),
    ),
    ("source .venv/bin/activate", ALLOW),
    (". \"$PWD/.venv/bin/activate\"", ALLOW),
    ("bash -c 'bash -c \"bash -c sudo\"'", refuse("sudo")),
];

/// History the harness keeps.
const HISTORY: &[Case] = &[
    ("rm -rf .git", refuse(".git")),
    ("rm -rf .git/objects", refuse(".git")),
    ("rm -rf ./.git/", refuse(".git")),
    ("rm -rf * .[!.]*", refuse("matches .git")),
    ("rm -rf .??*", refuse("matches .git")),
    ("rm -rf .*", refuse("matches .git")),
    ("rm -rf .g*", refuse("matches .git")),
    ("rm -rf {.git,build}", refuse(".git")),
    ("rm -rf src/../.git", refuse(".git")),
    ("rm -rf .", refuse("the project directory itself")),
    ("rm -rf ./", refuse("the project directory itself")),
    ("rm -rf \"$PWD\"", refuse("the project directory itself")),
    ("rm -rf $(pwd)", refuse("the project directory itself")),
    ("rm -rf `pwd`/", refuse("the project directory itself")),
    ("rm -rf src/..", refuse("the project directory itself")),
    ("cd src && rm -rf ..", refuse("would delete")),
    ("rm -rf ~+", refuse("the project directory itself")),
    ("rm -rf /", refuse("holds the project")),
    ("rmdir .", refuse("the project directory itself")),
    ("mv .git /tmp/g", refuse(".git")),
    ("mv . ../elsewhere", refuse("the project directory itself")),
    ("find . -delete", refuse(".git")),
    ("find . -mindepth 1 -delete", refuse(".git")),
    ("find . -maxdepth 1 -exec rm -rf {} +", refuse(".git")),
    ("find . ! -name '*.py' -delete", refuse(".git")),
    ("find . -name '*' -delete", refuse(".git")),
    ("find . -type f -delete", refuse(".git")),
    ("find .git -delete", refuse(".git")),
    ("find .* -delete", refuse(".git")),
    ("find \"$PWD\" -name HEAD -delete", refuse(".git")),
    ("find . -name '*.pyc' -delete", ALLOW),
    ("find . -type d -name __pycache__ -exec rm -rf {} +", ALLOW),
    (
        "find . -path ./.git -prune -o -type f -name '*.log' -delete",
        ALLOW,
    ),
    ("find . -path ./.git -prune -o -delete", ALLOW),
    ("find . -maxdepth 1 -name '*.tmp' -delete", ALLOW),
    ("find build -delete", ALLOW),
    ("find . -mindepth 1 -maxdepth 1 -name '*.o' -delete", ALLOW),
    ("gzip -r .", refuse("the project directory itself")),
    ("gzip -r src", ALLOW),
    (
        "pytest --basetemp=.",
        refuse("the project directory itself"),
    ),
    ("python3 -m pytest --basetemp ..", refuse("would delete")),
    ("pytest --basetemp=.git", refuse(".git")),
    (
        "pytest --basetemp=/etc/x",
        refuse("writes outside the project"),
    ),
    ("pytest --basetemp=.pytest_tmp -q", ALLOW),
    (
        "cargo clean --target-dir .",
        refuse("the project directory itself"),
    ),
    ("cargo clean --target-dir=..", refuse("would delete")),
    (
        "cargo build --target-dir /etc/t",
        refuse("writes outside the project"),
    ),
    ("cargo clean", ALLOW),
    ("cargo build --target-dir target/ci", ALLOW),
    ("chmod -R 000 .git", refuse(".git")),
    ("touch .git/hooks/pre-commit", refuse(".git")),
    ("cp hook.sh .git/hooks/pre-commit", refuse(".git")),
    ("echo x >> .git/config", refuse(".git")),
    ("git reflog expire --expire=now --all", refuse("history")),
    ("git reflog delete HEAD@{1}", refuse("history")),
    ("git reflog", ALLOW),
    ("git gc --prune=now", refuse("history")),
    ("git gc --prune", refuse("history")),
    ("git gc", ALLOW),
    ("git prune", refuse("history")),
    ("git update-ref -d refs/heads/main", refuse("history")),
    ("git update-ref refs/heads/main HEAD~3", refuse("history")),
    ("git replace HEAD HEAD~1", refuse("history")),
    ("git reset --hard HEAD~3", refuse("history")),
    ("git reset --hard 1a2b3c4d", refuse("history")),
    ("git reset --hard origin/main", refuse("history")),
    ("git reset --soft HEAD~1", refuse("history")),
    ("git reset --keep HEAD^", refuse("history")),
    ("git reset HEAD~2", refuse("history")),
    ("git reset --hard", ALLOW),
    ("git reset --hard HEAD", ALLOW),
    ("git reset", ALLOW),
    ("git reset src/app.py", ALLOW),
    ("git reset HEAD -- src/app.py", ALLOW),
    ("git rebase -i HEAD~3", refuse("history")),
    ("git rebase main", refuse("history")),
    ("git commit --amend -m x", refuse("history")),
    ("git commit --am -m x", refuse("history")),
    ("git commit -m 'Add feature'", ALLOW),
    ("git commit -c HEAD", ALLOW),
    ("git checkout -B main HEAD~2", refuse("history")),
    ("git switch -C main HEAD~2", refuse("history")),
    ("git checkout --orphan fresh", refuse("history")),
    ("git checkout -b feature/x", ALLOW),
    ("git checkout -- src/app.py", ALLOW),
    ("git switch -c feature/y", ALLOW),
    ("git branch -D main", refuse("history")),
    ("git branch -f main HEAD~3", refuse("history")),
    ("git branch -M other", refuse("history")),
    ("git branch --force main HEAD~1", refuse("history")),
    ("git branch feature", ALLOW),
    ("git branch -a", ALLOW),
    ("git push --force origin main", refuse("history")),
    ("git push -f", refuse("history")),
    ("git push origin +main", refuse("history")),
    ("git push --delete origin main", refuse("history")),
    ("git push origin main", ALLOW),
    ("git filter-repo --path x", refuse("history")),
    ("git symbolic-ref HEAD refs/heads/other", refuse("history")),
    ("git symbolic-ref HEAD", ALLOW),
    ("git pull --rebase", refuse("history")),
    ("git stash drop", ALLOW),
    ("git clean -fdx", ALLOW),
    ("git rm -r --cached build", ALLOW),
];

/// Writes outside the project, and what is left to the kernel.
const WRITES: &[Case] = &[
    ("echo x > /etc/passwd", refuse("writes outside the project")),
    ("echo x > ~/.bashrc", refuse("writes outside the project")),
    (
        "echo x > \"$HOME/.profile\"",
        refuse("writes outside the project"),
    ),
    (
        "echo x > ../escape.txt",
        refuse("writes outside the project"),
    ),
    ("cd .. && touch x", refuse("leaves the project")),
    ("touch /tmp/x", refuse("writes outside the project")),
    ("mkdir -p src/{models,views}", ALLOW),
    (
        "mkdir -p {src/a,/etc/x}",
        refuse("writes outside the project"),
    ),
    ("mkdir -p src/{a,/etc}", ALLOW),
    ("touch {a,b,c}.txt", ALLOW),
    ("touch file{1..3}.txt", ALLOW),
    ("touch \"$TMPDIR/scratch\"", ALLOW),
    ("cp README.md \"$PWD/copy.md\"", ALLOW),
    ("cp /etc/hostname .", ALLOW),
    ("cp README.md /etc/", refuse("writes outside the project")),
    ("echo x > \"$OUT/file\"", ALLOW),
    ("echo x > $(mktemp)", ALLOW),
    ("echo x > /dev/null 2>&1", ALLOW),
    ("echo x >&2", ALLOW),
    ("tee /etc/x < f", refuse("writes outside the project")),
    ("tee -a log.txt < f", ALLOW),
    (
        "ln -s /etc/passwd pw",
        refuse("pointing out of the project"),
    ),
    ("ln -s ../../etc x", refuse("pointing out of the project")),
    ("ln -s ../shared src/shared", ALLOW),
    ("ln -sf target.txt link.txt", ALLOW),
    (
        "patch -o /etc/x < p.diff",
        refuse("writes outside the project"),
    ),
    ("patch -p1 < fix.patch", ALLOW),
    ("uniq in.txt /etc/out", refuse("writes outside the project")),
    (
        "xxd -r dump.hex /etc/x",
        refuse("writes outside the project"),
    ),
    ("mktemp -p /etc", refuse("writes outside the project")),
    ("mktemp -d", ALLOW),
    ("tree -o /etc/x", refuse("writes outside the project")),
    ("tree -L 2 -o tree.txt", ALLOW),
];

/// Privilege, isolation and network tools.
const PRIVILEGE: &[Case] = &[
    ("sudo ls", refuse("privileges")),
    ("su -c ls", refuse("privileges")),
    ("doas ls", refuse("privileges")),
    ("pkexec ls", refuse("privileges")),
    ("setcap cap_net_raw+ep ./x", refuse("privileges")),
    ("chown root x", refuse("privileges")),
    ("mount -t tmpfs x /mnt", refuse("isolation")),
    ("unshare -r sh", refuse("isolation")),
    ("nsenter -t 1 -m sh", refuse("isolation")),
    ("setsid sleep 10", refuse("isolation")),
    ("nc -l 8080", refuse("for HTTP use `curl`")),
    ("ssh host ls", refuse("for HTTP use `curl`")),
    ("perl -e 1", refuse("not on the allowlist")),
    ("coproc ls", refuse("coprocess")),
];

fn project() -> (tempfile::TempDir, ProjectRoot) {
    let dir = tempfile::tempdir().unwrap();
    for d in [
        "src",
        "tests",
        ".git/hooks",
        ".git/objects",
        "build",
        "public",
        "data",
    ] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::write(dir.path().join("init.sh"), "echo hi\n").unwrap();
    std::fs::write(dir.path().join("tests/test_app.py"), "def test(): pass\n").unwrap();
    let mut root = ProjectRoot::new(dir.path()).unwrap();
    root.protect(Path::new("tests/test_app.py"));
    (dir, root)
}

fn run(cases: &[Case], context: &PolicyContext) -> Vec<String> {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    let mut failures = Vec::new();
    for (command, expected) in cases {
        match (policy.check(command, &root, context), expected) {
            (Ok(()), None) => {}
            (Err(denial), Some(needle)) if denial.reason.contains(needle) => {}
            (Ok(()), Some(needle)) => {
                failures.push(format!("ALLOWED, expected refusal ({needle}): {command}"))
            }
            (Err(denial), Some(needle)) => failures.push(format!(
                "refused for another reason than {needle:?}: {command}\n    {}",
                denial.reason
            )),
            (Err(denial), None) => failures.push(format!(
                "REFUSED, expected allowed: {command}\n    {}",
                denial.reason
            )),
        }
    }
    failures
}

fn generous() -> PolicyContext {
    PolicyContext {
        allow_network: true,
        processes_scoped: true,
        temp_dir: None,
    }
}

const TABLES: &[(&str, &[Case])] = &[
    ("program substitution", PROGRAM_SUBSTITUTION),
    ("indirect assignment", INDIRECT_ASSIGNMENT),
    ("shell options", SHELL_OPTIONS),
    ("git injection", GIT_INJECTION),
    ("abbreviations and path-carrying options", ABBREVIATIONS),
    ("tools that execute or write", SELF_EXECUTING),
    ("shell code", SHELL_CODE),
    ("history", HISTORY),
    ("writes", WRITES),
    ("privilege", PRIVILEGE),
];

#[test]
fn the_bypass_corpus_is_refused_and_near_misses_allowed() {
    let mut failures = Vec::new();
    let mut total = 0;
    let mut refused = 0;
    for (class, cases) in TABLES {
        total += cases.len();
        refused += cases.iter().filter(|(_, e)| e.is_some()).count();
        for f in run(cases, &generous()) {
            failures.push(format!("[{class}] {f}"));
        }
    }
    eprintln!(
        "bypass corpus: {total} commands, {refused} to refuse, {} allowed near misses",
        total - refused
    );
    assert!(total >= 150, "the corpus has {total} entries");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "prints every refusal, for reading"]
fn print_refusals() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    for (_, cases) in TABLES {
        for (command, expected) in *cases {
            if expected.is_some() {
                let reason = policy
                    .check(command, &root, &generous())
                    .unwrap_err()
                    .reason;
                println!("{command}\n    -> {reason}");
            }
        }
    }
}

#[test]
fn every_refusal_says_what_why_and_what_instead() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    let mut terse = Vec::new();
    for (_, cases) in TABLES {
        for (command, expected) in *cases {
            if expected.is_none() {
                continue;
            }
            let reason = policy
                .check(command, &root, &generous())
                .unwrap_err()
                .reason;
            // What: the program or the construct is named. Why and what instead: a reason and an
            // instruction follow it (after `;` or `:`, or in a sentence long enough to hold them).
            let names = reason.contains('`') || reason.contains("output redirection");
            let explains = reason.contains(';') || reason.contains(':') || reason.contains(", ");
            if !names || !explains || reason.len() < 60 {
                terse.push(format!("{command}: {reason}"));
            }
        }
    }
    assert!(terse.is_empty(), "terse refusals:\n{}", terse.join("\n"));
}

/// Process tools are allowed only when the run's processes are scoped to their own namespace.
#[test]
fn process_tools_follow_the_confinement() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    let scoped = generous();
    let unscoped = PolicyContext::new(true);
    let signal_anything = [
        "pkill -f 'node server.js'",
        "kill $(cat server.pid)",
        "kill -9 -1",
        "kill 1",
        "killall node",
        "lsof -i :3000",
        "ps aux",
        "pgrep -f vite",
        "ss -ltnp",
        "netstat -tlnp",
        "pidof node",
    ];
    for command in signal_anything {
        policy.check(command, &root, &scoped).unwrap();
        let reason = policy.check(command, &root, &unscoped).unwrap_err().reason;
        assert!(
            reason.contains("process namespace of their own"),
            "{command}: {reason}"
        );
        assert!(reason.contains("kill %1"), "{command}: {reason}");
    }
    for command in [
        "kill %1",
        "kill -TERM %2",
        "kill $!",
        "kill -9 \"$!\"",
        "kill -l",
        "jobs -l; wait",
    ] {
        policy.check(command, &root, &unscoped).unwrap();
    }
}

/// Without network, tools whose purpose is the network say so; local servers stay reachable.
#[test]
fn network_subcommands_follow_the_network_setting() {
    let (_dir, root) = project();
    let policy = CommandPolicy::default();
    let offline = PolicyContext::default();
    for command in [
        "pip install requests",
        "npm install",
        "cargo fetch",
        "go mod download",
        "git fetch",
    ] {
        let reason = policy.check(command, &root, &offline).unwrap_err().reason;
        assert!(reason.contains("network"), "{command}: {reason}");
        policy.check(command, &root, &generous()).unwrap();
    }
    for command in [
        "curl -s http://127.0.0.1:8000/",
        "wget -qO- http://localhost:3000/",
    ] {
        policy.check(command, &root, &offline).unwrap();
    }
}

/// A temp dir the policy knows is writable like the project; the project root is still not
/// deletable through it.
#[test]
fn a_known_temp_dir_is_writable() {
    let (_dir, root) = project();
    let temp = tempfile::tempdir().unwrap();
    let temp_path = temp.path().canonicalize().unwrap();
    let context = PolicyContext {
        temp_dir: Some(temp_path.clone()),
        ..PolicyContext::default()
    };
    let policy = CommandPolicy::default();
    let t = temp_path.display();
    for command in [
        format!("touch {t}/x"),
        format!("mkdir -p {t}/build && cd {t}/build && touch out.o"),
        format!("echo x > {t}/log.txt"),
        format!("{t}/bin/tool --version"),
        "touch \"$TMPDIR/scratch\"".to_string(),
        "\"$TMPDIR/venv/bin/python\" -V".to_string(),
    ] {
        if let Err(e) = policy.check(&command, &root, &context) {
            panic!("{command}: {e}");
        }
    }
    policy
        .check("touch /tmp/elsewhere/x", &root, &context)
        .unwrap_err();
}
