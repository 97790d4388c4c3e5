//! Per-program argument rules: what each allowed program may be asked to do.

mod files;
mod git;
mod launchers;
mod shell;
mod toolchains;

use super::allowlist::dangerous_variable;
use super::walk::Checker;
use super::words::Arg;
use super::{deny, PolicyDenial};

impl Checker<'_> {
    /// Argument rules for commands that launch others, write files, or reach the network.
    pub(crate) fn arguments(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        match name {
            "cd" | "pushd" => self.cd(name, args),
            "source" | "." => {
                let Some(file) = args.first() else {
                    return deny(format!("`{name}` needs a file"));
                };
                match file.plain() {
                    Some(f) if self.read_inside(f) => Ok(()),
                    _ => deny(format!(
                        "`{name} {}`: only files inside the project may be sourced",
                        file.raw
                    )),
                }
            }
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                for a in args {
                    let text = a.literal.as_deref().unwrap_or(&a.raw);
                    if text.starts_with('-') && text.contains('f') && name != "local" {
                        return deny(format!("`{name} {text}` defines or exports functions; define functions directly"));
                    }
                    let var = text.split(['=', '+', '[']).next().unwrap_or("");
                    if dangerous_variable(var) {
                        return deny(format!(
                            "setting `{var}` changes which programs run or what they load; it is not allowed"
                        ));
                    }
                }
                Ok(())
            }
            "command" => {
                let mut rest = args;
                while let Some(first) = rest.first() {
                    match first.plain() {
                        Some("-v") | Some("-V") => return Ok(()),
                        Some("-p") | Some("--") => rest = &rest[1..],
                        _ => break,
                    }
                }
                self.argv(rest)
            }
            "builtin" => self.argv(args),
            "env" => self.env(args),
            "nice" => self.after_options(name, args, &["-n", "--adjustment"]),
            "nohup" => self.after_options(name, args, &[]),
            "time" => self.after_options(name, args, &["-f", "--format", "-o", "--output"]),
            "timeout" => {
                let start = skip_options(args, &["-s", "--signal", "-k", "--kill-after"]);
                // The duration, then the command.
                let rest = args.get(start + 1..).unwrap_or(&[]);
                self.launch(name, rest)
            }
            "xargs" => {
                let start = skip_options(
                    args,
                    &[
                        "-a",
                        "--arg-file",
                        "-d",
                        "--delimiter",
                        "-E",
                        "-e",
                        "--eof",
                        "-I",
                        "-i",
                        "--replace",
                        "-L",
                        "--max-lines",
                        "-n",
                        "--max-args",
                        "-P",
                        "--max-procs",
                        "-s",
                        "--max-chars",
                    ],
                );
                let rest = &args[start.min(args.len())..];
                if rest.is_empty() {
                    return Ok(()); // xargs runs echo
                }
                self.launch(name, rest)
            }
            "find" => self.find(args),
            "bash" | "sh" => self.shell(name, args),
            "rm" | "rmdir" | "mkdir" | "touch" | "chmod" | "tee" | "mv" | "cp" | "ln" => {
                self.path_args(name, args)
            }
            "sed" => {
                if args.iter().any(|a| {
                    a.plain().is_some_and(|v| {
                        v == "-i"
                            || v.starts_with("-i")
                            || v.starts_with("--in-place")
                            || (v.starts_with('-')
                                && !v.starts_with("--")
                                && v.contains('i')
                                && !v.contains('e'))
                    })
                }) {
                    self.path_args(name, args)
                } else {
                    Ok(())
                }
            }
            "git" => self.git(args),
            "node" => self.node(args),
            "python" | "python3" => self.python(name, args),
            "pip" | "pip3" => self.pip(name, args),
            "npm" | "yarn" | "pnpm" => self.npm(name, args),
            "npx" => {
                if args
                    .iter()
                    .any(|a| matches!(a.plain(), Some("-c") | Some("--call")))
                {
                    return deny("`npx -c` runs a shell string that cannot be checked; run the command directly");
                }
                Ok(())
            }
            "cargo" => self.cargo(args),
            "rustup" => {
                let sub = first_positional(args, &["--toolchain"]);
                match sub.as_deref() {
                    Some("show") | Some("which") | Some("--version") | None => Ok(()),
                    Some("component") | Some("target") | Some("toolchain") if args.iter().any(|a| matches!(a.plain(), Some("list"))) => Ok(()),
                    _ if self.network => Ok(()),
                    _ => deny("`rustup` may only show toolchains here; installing needs network access, which is not available in this sandbox"),
                }
            }
            "go" => self.go(args),
            _ => Ok(()),
        }
    }
}

/// Index of the first argument after options; `with_value` options consume the next argument.
pub(crate) fn skip_options(args: &[Arg], with_value: &[&str]) -> usize {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let v = a.literal.as_deref().unwrap_or(&a.raw);
        if v == "--" {
            return i + 1;
        }
        if !v.starts_with('-') || v == "-" {
            return i;
        }
        if with_value.contains(&v) {
            i += 2;
        } else {
            i += 1;
        }
    }
    i
}

/// The first argument that is not an option (nor an option's value from `with_value`).
pub(crate) fn first_positional(args: &[Arg], with_value: &[&str]) -> Option<String> {
    let i = skip_options(args, with_value);
    args.get(i)
        .map(|a| a.literal.clone().unwrap_or_else(|| a.raw.clone()))
}
