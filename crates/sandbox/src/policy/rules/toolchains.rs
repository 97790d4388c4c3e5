//! Language toolchains: interpreters (`node`, `python`) and package managers (`pip`, `npm`,
//! `cargo`, `go`), whose network subcommands need the network.

use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use super::first_positional;

impl Checker<'_> {
    pub(crate) fn node(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let v = a.literal.as_deref().unwrap_or(&a.raw);
            if matches!(
                v,
                "-e" | "--eval" | "-p" | "--print" | "-i" | "--interactive" | "-"
            ) || v.starts_with("--eval=")
                || v.starts_with("--print=")
                || (v.starts_with('-')
                    && !v.starts_with("--")
                    && (v.contains('e') || v.contains('p')))
            {
                return deny("`node -e`/`-p` (or reading code from stdin) runs code given inline; write it to a file in the project and run `node file.js`");
            }
            if matches!(
                v,
                "-r" | "--require"
                    | "--import"
                    | "--loader"
                    | "--experimental-loader"
                    | "--env-file"
                    | "--input-type"
                    | "--stack-size"
                    | "--max-old-space-size"
            ) {
                i += 2;
                continue;
            }
            if v.starts_with('-') {
                if matches!(v, "--version" | "-v" | "--help" | "-h") {
                    return Ok(());
                }
                i += 1;
                continue;
            }
            return Ok(()); // a script
        }
        deny("`node` without a script reads code from its input; write the code to a file in the project and run `node file.js`")
    }

    pub(crate) fn python(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let v = a.literal.as_deref().unwrap_or(&a.raw);
            if v == "-c" || (v.starts_with('-') && !v.starts_with("--") && v.ends_with('c')) {
                // Allowed: equivalent to writing a file and running it; the kernel layer confines it.
                return Ok(());
            }
            if v == "-m" || (v.starts_with('-') && !v.starts_with("--") && v.ends_with('m')) {
                let module = args
                    .get(i + 1)
                    .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
                    .unwrap_or("");
                let rest = args.get(i + 2..).unwrap_or(&[]);
                return match module {
                    "pip" => self.pip(&format!("{name} -m pip"), rest),
                    _ => Ok(()),
                };
            }
            if matches!(v, "-W" | "-X" | "--check-hash-based-pycs") {
                i += 2;
                continue;
            }
            if v == "-" || v == "-i" {
                break;
            }
            if v.starts_with('-') {
                if matches!(v, "--version" | "-V" | "--help" | "-h") {
                    return Ok(());
                }
                i += 1;
                continue;
            }
            return Ok(()); // a script
        }
        deny(format!(
            "`{name}` without a script reads code from its input (or is interactive); write the code to a file in the project and run `{name} file.py`"
        ))
    }

    pub(crate) fn pip(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let sub = first_positional(args, &[]);
        match sub.as_deref() {
            Some("install") | Some("download") | Some("wheel") | Some("index") | Some("search") => {
                if self.network {
                    Ok(())
                } else {
                    deny(format!(
                        "`{name} {}` needs network access, which is not available in this sandbox; use the packages already installed",
                        sub.unwrap_or_default()
                    ))
                }
            }
            Some("config") if !self.network => deny(format!(
                "`{name} config` is not allowed; use pip's defaults"
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn npm(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let sub = first_positional(args, &["--prefix", "-C", "-w", "--workspace"]);
        let values: Vec<&str> = args
            .iter()
            .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
            .collect();
        if matches!(sub.as_deref(), Some("exec") | Some("x"))
            && values.iter().any(|v| matches!(*v, "-c" | "--call"))
        {
            return deny(format!("`{name} exec -c` runs a shell string that cannot be checked; run the command directly"));
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
        match sub.as_deref() {
            Some(s) if NETWORK.contains(&s) && !self.network => deny(format!(
                "`{name} {s}` needs network access, which is not available in this sandbox; use the dependencies already in node_modules"
            )),
            None if name == "yarn" && !self.network => deny("`yarn` alone installs dependencies, which needs network access; it is not available in this sandbox"),
            _ => Ok(()),
        }
    }

    pub(crate) fn cargo(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let sub = first_positional(args, &["--config", "-Z", "--color", "-C"]);
        for a in args {
            let v = a.literal.as_deref().unwrap_or(&a.raw);
            if v == "--config" || v.starts_with("--config=") {
                return deny("`cargo --config` can replace the compiler or linker; put settings in the project's .cargo/config.toml");
            }
        }
        match sub.as_deref() {
            Some("install") | Some("uninstall") | Some("publish") | Some("login") | Some("logout") | Some("owner") | Some("yank") | Some("search") | Some("fetch") | Some("update") | Some("add") | Some("generate-lockfile")
                if !self.network =>
            {
                deny(format!(
                    "`cargo {}` needs network access (or changes the global toolchain); network access is not available in this sandbox",
                    sub.unwrap_or_default()
                ))
            }
            Some("install") | Some("uninstall") | Some("publish") | Some("login") | Some("logout") | Some("owner") | Some("yank") => deny(format!(
                "`cargo {}` changes state outside the project; it is not allowed",
                sub.unwrap_or_default()
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn go(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let positional: Vec<&str> = args
            .iter()
            .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
            .filter(|v| !v.starts_with('-'))
            .collect();
        let network_needed = match positional.as_slice() {
            ["get", ..] => true,
            ["install", rest @ ..] => rest.iter().any(|p| p.contains('@')),
            ["mod", "download" | "tidy" | "vendor", ..] => true,
            _ => false,
        };
        if network_needed && !self.network {
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
}
