//! Language toolchains. Interpreters (`python`, `node`) run code given inline or on stdin like
//! code in a file: the kernel confines both, so they are allowed. Package managers' network
//! subcommands need the network; settings that make them run another program
//! (`npm --script-shell`, `cargo --config`, `go -toolexec`, `make SHELL=`) are refused.

use super::super::allowlist::variable_refusal;
use super::super::paths::Effect;
use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use super::options::{self, abbreviates, Spec};

impl Checker<'_> {
    pub(crate) fn python(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let v = a.option_text();
            if v == "-c" || (v.starts_with('-') && !v.starts_with("--") && v.ends_with('c')) {
                return Ok(());
            }
            if v == "-m" || (v.starts_with('-') && !v.starts_with("--") && v.ends_with('m')) {
                let module = args.get(i + 1).map(Arg::option_text).unwrap_or("");
                let rest = args.get(i + 2..).unwrap_or(&[]);
                return match module {
                    "pip" => self.pip(&format!("{name} -m pip"), rest),
                    "pytest" => self.pytest(&format!("{name} -m pytest"), rest),
                    _ => Ok(()),
                };
            }
            if matches!(v, "-W" | "-X" | "--check-hash-based-pycs") {
                i += 2;
                continue;
            }
            if v.starts_with('-') {
                i += 1;
                continue;
            }
            return Ok(()); // a script
        }
        Ok(()) // code on stdin, or interactive with no terminal
    }

    pub(crate) fn pip(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            long_values: &[
                "proxy",
                "log",
                "log-file",
                "cache-dir",
                "timeout",
                "retries",
                "exists-action",
                "trusted-host",
                "cert",
                "client-cert",
                "python",
                "keyring-provider",
                "use-feature",
                "use-deprecated",
                "resume-retries",
            ],
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        let sub = options::operands(&items)
            .first()
            .map(|a| a.option_text().to_string());
        match sub.as_deref() {
            Some("install" | "download" | "wheel" | "index" | "search")
                if !self.context.allow_network =>
            {
                deny(format!(
                    "`{name} {}` needs network access, which is not available in this sandbox; use the packages already installed",
                    sub.unwrap_or_default()
                ))
            }
            Some("config") if !self.context.allow_network => deny(format!(
                "`{name} config` is not allowed; use pip's defaults"
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn npm(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        const RUNS: &[&str] = &[
            "script-shell",
            "shell",
            "git",
            "editor",
            "browser",
            "viewer",
            "userconfig",
            "globalconfig",
            "node-options",
            "onload-script",
            "init-module",
            "call",
        ];
        for a in args {
            let v = a.option_text();
            let Some(long) = v.strip_prefix("--") else {
                continue;
            };
            let key = long.split('=').next().unwrap_or("");
            if key.len() >= 2 && RUNS.iter().any(|r| abbreviates(key, r)) {
                return deny(format!(
                    "`{name} --{key}` makes {name} run another program or read other configuration; use the defaults"
                ));
            }
        }
        let values: Vec<&str> = args.iter().map(Arg::option_text).collect();
        let sub = values
            .iter()
            .position(|v| !v.starts_with('-'))
            .map(|k| values[k]);
        if matches!(sub, Some("exec" | "x")) && values.contains(&"-c") {
            return deny(format!("`{name} exec -c` runs a shell string that cannot be checked; run the command directly"));
        }
        if matches!(sub, Some("config" | "set")) {
            let key = values
                .iter()
                .skip_while(|v| !matches!(**v, "set" | "config"))
                .skip(1)
                .find(|v| !v.starts_with('-') && **v != "set")
                .copied()
                .unwrap_or("");
            let key = key.split('=').next().unwrap_or("").replace('_', "-");
            if RUNS.contains(&key.as_str()) {
                return deny(format!(
                    "`{name} config set {key}` makes {name} run another program or read other configuration; use the defaults"
                ));
            }
        }
        const NETWORK: &[&str] = &[
            "install",
            "i",
            "ci",
            "add",
            "update",
            "up",
            "upgrade",
            "publish",
            "unpublish",
            "audit",
            "outdated",
            "login",
            "logout",
            "adduser",
            "dist-tag",
            "deprecate",
            "owner",
            "search",
            "view",
            "info",
            "dlx",
            "create",
            "init",
            "link",
            "install-test",
            "it",
            "pack",
            "token",
            "whoami",
            "ping",
            "doctor",
        ];
        match sub {
            Some(s) if NETWORK.contains(&s) && !self.context.allow_network => deny(format!(
                "`{name} {s}` needs network access, which is not available in this sandbox; use the dependencies already in node_modules"
            )),
            None if name == "yarn" && !self.context.allow_network => deny("`yarn` alone installs dependencies, which needs network access; it is not available in this sandbox"),
            _ => Ok(()),
        }
    }

    pub(crate) fn npx(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        for a in args {
            let v = a.option_text();
            let call = v == "-c"
                || v.strip_prefix("--")
                    .map(|l| l.split('=').next().unwrap_or(""))
                    .is_some_and(|l| l.len() >= 2 && abbreviates(l, "call"));
            if call {
                return deny(
                    "`npx -c` runs a shell string that cannot be checked; run the command directly",
                );
            }
            if !v.starts_with('-') {
                break;
            }
        }
        Ok(())
    }

    pub(crate) fn cargo(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        for a in args {
            let v = a.option_text();
            let config = v
                .strip_prefix("--")
                .map(|l| l.split('=').next().unwrap_or(""))
                .is_some_and(|l| l.len() >= 3 && abbreviates(l, "config"));
            if config {
                return deny("`cargo --config` can replace the compiler or linker; put settings in the project's .cargo/config.toml");
            }
        }
        let spec = Spec {
            short_values: "Zp",
            long_values: &["color", "config", "target-dir", "package", "manifest-path"],
            short_optional: "",
            permute: true,
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        let sub = options::operands(&items)
            .first()
            .map(|a| a.option_text().to_string());
        // `cargo clean` deletes the target dir: `--target-dir .` would take the project with it.
        let effect = if sub.as_deref() == Some("clean") {
            Effect::Delete
        } else {
            Effect::Write
        };
        self.option_values_are(
            "cargo --target-dir",
            &items,
            None,
            Some("target-dir"),
            effect,
        )?;
        match sub.as_deref() {
            Some("install" | "uninstall" | "publish" | "login" | "logout" | "owner" | "yank") => {
                deny(format!(
                    "`cargo {}` changes state outside the project; it is not allowed",
                    sub.unwrap_or_default()
                ))
            }
            Some("search" | "fetch" | "update" | "add" | "generate-lockfile")
                if !self.context.allow_network =>
            {
                deny(format!(
                    "`cargo {}` needs network access, which is not available in this sandbox",
                    sub.unwrap_or_default()
                ))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn rustup(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let values: Vec<&str> = args.iter().map(Arg::option_text).collect();
        let sub = values.iter().find(|v| !v.starts_with('-')).copied();
        match sub {
            Some("show" | "which") | None => Ok(()),
            Some("component" | "target" | "toolchain") if values.contains(&"list") => Ok(()),
            _ if self.context.allow_network => Ok(()),
            _ => deny("`rustup` may only show toolchains here; installing needs network access, which is not available in this sandbox"),
        }
    }

    pub(crate) fn go(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        for a in args {
            let v = a.option_text().trim_start_matches('-');
            let flag = v.split('=').next().unwrap_or("");
            if a.option_text().starts_with('-') && matches!(flag, "toolexec" | "exec") {
                return deny(format!(
                    "`go -{flag}` makes go run another program for each step; build and run without it"
                ));
            }
        }
        let positional: Vec<&str> = args
            .iter()
            .map(Arg::option_text)
            .filter(|v| !v.starts_with('-'))
            .collect();
        let network_needed = match positional.as_slice() {
            ["get", ..] => true,
            ["install", rest @ ..] => rest.iter().any(|p| p.contains('@')),
            ["mod", "download" | "tidy" | "vendor", ..] => true,
            _ => false,
        };
        if network_needed && !self.context.allow_network {
            return deny(format!(
                "`go {}` needs network access, which is not available in this sandbox; use the modules already downloaded",
                positional.join(" ")
            ));
        }
        if positional.first() == Some(&"env") && args.iter().any(|a| a.plain() == Some("-w")) {
            return deny("`go env -w` changes the global Go configuration; it is not allowed");
        }
        Ok(())
    }

    /// `pytest --basetemp=DIR` empties DIR before the run: it may not be the project (or hold
    /// it) or be outside it.
    pub(crate) fn pytest(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            long_values: &["basetemp", "rootdir", "confcutdir", "junit-xml", "junitxml"],
            short_values: "kmpc",
            permute: true,
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        self.option_values_are(
            &format!("{name} --basetemp"),
            &items,
            None,
            Some("basetemp"),
            Effect::Delete,
        )?;
        for long in ["junit-xml", "junitxml"] {
            self.option_values_are(name, &items, None, Some(long), Effect::Write)?;
        }
        Ok(())
    }

    /// `rg --pre COMMAND` runs COMMAND on every file searched.
    pub(crate) fn ripgrep(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        for a in args {
            let text = a.option_text();
            if text == "--pre" || text.starts_with("--pre=") {
                return deny("`rg --pre` runs a program on every file it searches; search the files directly, or convert them first");
            }
            if text == "--" {
                break;
            }
        }
        Ok(())
    }

    /// `tree -o FILE` writes FILE.
    pub(crate) fn tree(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "oLPIH",
            long_values: &["filelimit", "timefmt", "charset", "sort", "fromfile"],
            permute: true,
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        self.option_values_are("tree -o", &items, Some('o'), None, Effect::Write)
    }

    /// `make`: a Makefile runs like a script in the project; overriding the shell it runs
    /// recipes with is refused.
    pub(crate) fn make(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        for a in args {
            let text = a.option_text();
            if let Some((name, _)) = text.split_once('=') {
                if matches!(name, "SHELL" | "MAKESHELL" | ".SHELLFLAGS" | "MAKEFLAGS") {
                    return deny(format!(
                        "`make {name}=…` changes the program make runs recipes with; use the Makefile's own settings"
                    ));
                }
                if !text.starts_with('-') {
                    if let Some(reason) = variable_refusal(name, None) {
                        return deny(format!("`make {name}=…`: {reason}"));
                    }
                }
            }
        }
        Ok(())
    }
}
