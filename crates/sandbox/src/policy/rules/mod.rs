//! Per-program argument rules: what each allowed program may be asked to do.
//!
//! The rules look for the classes of danger the kernel cannot judge: programs run under other
//! names, settings that make a shell or a tool run strings, tools that execute or write by
//! themselves, paths written outside the project, and history destroyed. Options are read the
//! way each program reads them ([`options`]), so an abbreviation (`--in-pl`) is the option.

mod archives;
mod files;
mod git;
mod launchers;
mod network;
mod options;
mod processes;
mod scripts;
mod shell;
mod toolchains;

use super::paths::Effect;
use super::walk::Checker;
use super::words::Arg;
use super::PolicyDenial;
use options::{Item, Spec};

impl Checker<'_> {
    /// Argument rules for the program `name` (already on the allowlist).
    pub(crate) fn arguments(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        match name {
            "cd" | "pushd" => self.cd(name, args),
            "source" | "." => self.source(name, args),
            "export" | "declare" | "typeset" | "local" | "readonly" => self.declare(name, args),
            "read" => self.read(args),
            "mapfile" | "readarray" => self.mapfile(name, args),
            "printf" => self.printf(args),
            "getopts" => self.getopts(args),
            "wait" => self.wait(args),
            "unset" => self.unset(args),
            "set" => self.set(args),
            "shopt" => self.shopt(args),
            "hash" => self.hash(args),
            "command" => self.command_builtin(args),
            "builtin" => self.argv(args),
            "bash" | "sh" => self.shell(name, args),
            "env" => self.env(args),
            "nice" | "nohup" | "time" | "timeout" | "stdbuf" => self.launcher(name, args),
            "xargs" => self.xargs(args),
            "find" => self.find(args),
            "rm" | "rmdir" => self.remove(name, args),
            "mkdir" | "touch" | "chmod" | "tee" => self.write_operands(name, args),
            "cp" | "mv" | "ln" => self.copy_move(name, args),
            "sort" => self.sort(args),
            "uniq" => self.uniq(args),
            "patch" => self.patch(args),
            "mktemp" => self.mktemp(args),
            "xxd" => self.xxd(args),
            "tar" => self.tar(args),
            "zip" => self.zip(args),
            "unzip" => self.unzip(args),
            "gzip" | "gunzip" => self.gzip(name, args),
            "sed" => self.sed(args),
            "awk" | "gawk" => self.awk(name, args),
            "sqlite3" => self.sqlite3(args),
            "curl" => self.curl(args),
            "wget" => self.wget(args),
            "git" => self.git(args),
            "python" | "python3" => self.python(name, args),
            "pip" | "pip3" => self.pip(name, args),
            "npm" | "yarn" | "pnpm" => self.npm(name, args),
            "npx" => self.npx(args),
            "cargo" => self.cargo(args),
            "rustup" => self.rustup(args),
            "go" => self.go(args),
            "make" => self.make(args),
            "pytest" | "py.test" => self.pytest(name, args),
            "rg" => self.ripgrep(args),
            "tree" => self.tree(args),
            _ => Ok(()),
        }
    }

    /// Checks every operand among `items` as a path `program` writes or deletes.
    fn operands_are(
        &self,
        program: &str,
        items: &[Item<'_>],
        effect: Effect,
    ) -> Result<(), PolicyDenial> {
        for arg in options::operands(items) {
            self.check_target(program, arg, effect)?;
        }
        Ok(())
    }

    /// Checks the value of every option among `items` that is `letter` or (an abbreviation of)
    /// `long`, as a path `program` writes.
    fn option_values_are(
        &self,
        program: &str,
        items: &[Item<'_>],
        letter: Option<char>,
        long: Option<&str>,
        effect: Effect,
    ) -> Result<(), PolicyDenial> {
        for item in items.iter().filter(|i| i.is(letter, long)) {
            if let Some(value) = item.value_arg() {
                self.check_target(program, &value, effect)?;
            }
        }
        Ok(())
    }
}

/// Whether `item` may be the long option `dangerous`: it names it, or abbreviates it without
/// being exactly another option of `spec` (getopt_long takes an exact match first).
pub(crate) fn means(item: &Item<'_>, dangerous: &str, spec: &Spec) -> bool {
    let Item::Long { given, .. } = item else {
        return false;
    };
    if given == dangerous {
        return true;
    }
    let exact_other = spec
        .long_values
        .iter()
        .chain(spec.long_optional)
        .chain(spec.long_flags)
        .any(|o| o == given);
    !exact_other && options::abbreviates(given, dangerous)
}

/// The first long option among `items` that may be one of `dangerous`: (as given, the option).
pub(crate) fn find_long(
    items: &[Item<'_>],
    dangerous: &[&'static str],
    spec: &Spec,
) -> Option<(String, &'static str)> {
    for item in items {
        for d in dangerous {
            if means(item, d, spec) {
                if let Item::Long { given, .. } = item {
                    return Some((given.clone(), d));
                }
            }
        }
    }
    None
}
