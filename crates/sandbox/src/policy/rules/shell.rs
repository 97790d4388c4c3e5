//! Shells and the builtins that change the shell's state: `bash`/`sh` (scripts, `-c` strings,
//! code on stdin), `cd`, `source`, and every way of setting a variable or a shell option
//! (`declare`, `read`, `printf -v`, `mapfile`, `getopts`, `set`, `shopt`), so that `PATH`,
//! `IFS`, `BASH_CMDS` or `keyword` cannot be set indirectly, and `hash -p` cannot put another
//! program under an allowed name.

use super::super::allowlist::{set_flag_name, shell_option_refusal, variable_refusal};
use super::super::paths::Cwd;
use super::super::walk::{Checker, Stdin};
use super::super::words::{variable_name, Arg, PWD_MARK, TMP_MARK};
use super::super::{deny, PolicyDenial};
use super::options::{self, Item, Spec};
use crate::path::{normalize_lexically, Access};

impl Checker<'_> {
    pub(crate) fn cd(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let dirs: Vec<&Arg> = args
            .iter()
            .filter(|a| !(a.option_text().starts_with('-') && a.option_text().len() > 1))
            .collect();
        let Some(dir) = dirs.first() else {
            return deny(format!("`{name}` without a directory goes to $HOME, outside the project; give a directory inside it"));
        };
        if dir.plain() == Some("-") {
            return deny(format!(
                "`{name} -` is not supported; give a directory inside the project"
            ));
        }
        let Some(value) = &dir.value else {
            // A directory the policy cannot evaluate: relative paths after it are the kernel's.
            if !self.cwds.contains(&Cwd::Unknown) {
                self.cwds.push(Cwd::Unknown);
            }
            return Ok(());
        };
        if dir.glob {
            return deny(format!(
                "`{name} {}`: give the directory without glob or brace characters",
                dir.raw
            ));
        }
        let text: String = value.iter().map(|q| q.c).collect();
        if text.starts_with(TMP_MARK) {
            if !self.cwds.contains(&Cwd::Unknown) {
                self.cwds.push(Cwd::Unknown);
            }
            return Ok(());
        }
        let mut next = Vec::new();
        for cwd in &self.cwds {
            let Cwd::Known(base) = cwd else {
                next.push(Cwd::Unknown);
                continue;
            };
            let path = text.replace(PWD_MARK, &base.to_string_lossy());
            let target = normalize_lexically(&base.join(&path));
            if self.in_temp_dir(&target) {
                next.push(Cwd::Known(target));
                continue;
            }
            match self.project.resolve_from(base, &path, Access::Read) {
                Ok(p) => next.push(Cwd::Known(p)),
                Err(e) => {
                    return deny(format!(
                        "`{name} {}` leaves the project ({e}); commands run inside the project directory (or $TMPDIR)",
                        dir.shown()
                    ))
                }
            }
        }
        for p in next {
            if !self.cwds.contains(&p) {
                self.cwds.push(p);
            }
        }
        Ok(())
    }

    pub(crate) fn source(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let Some(file) = args.first() else {
            return deny(format!("`{name}` needs a file"));
        };
        let path = file.value.as_ref().filter(|_| !file.glob).map(|v| {
            v.iter()
                .map(|q| q.c)
                .collect::<String>()
                .replacen(PWD_MARK, ".", 1)
        });
        match path {
            Some(p) if !p.contains(TMP_MARK) && self.read_inside(&p) => Ok(()),
            _ => deny(format!(
                "`{name} {}`: only files inside the project may be sourced; give the path",
                file.raw
            )),
        }
    }

    /// `declare`, `typeset`, `local`, `export`, `readonly`.
    pub(crate) fn declare(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        for a in args {
            let text = a.option_text();
            if (text.starts_with('-') || text.starts_with('+')) && a.literal.is_some() {
                let flags = &text[1..];
                if flags.contains('n') {
                    return deny(format!(
                        "`{name} {text}` makes a name reference, which can redirect later assignments to variables such as PATH; use the variable directly"
                    ));
                }
                if flags.contains('f') && name != "local" {
                    return deny(format!(
                        "`{name} {text}` defines or exports functions; define functions directly"
                    ));
                }
                continue;
            }
            self.assigned_name(name, a)?;
        }
        Ok(())
    }

    /// Checks an argument that names a variable to set (`NAME`, `NAME=value`, `NAME[i]=v`).
    fn assigned_name(&self, program: &str, arg: &Arg) -> Result<(), PolicyDenial> {
        let text = arg.option_text();
        let has_value = text.contains('=');
        if arg.literal.is_none() && !has_value {
            return deny(format!(
                "`{program} {}`: the variable name is computed, so it cannot be checked; write the name out",
                arg.raw
            ));
        }
        let head = text.split('=').next().unwrap_or("").trim_end_matches('+');
        let Some(var) = variable_name(head) else {
            return deny(format!(
                "`{program} {}`: `{head}` is not a plain variable name; write the name out",
                arg.raw
            ));
        };
        let value = arg
            .literal
            .as_deref()
            .and_then(|l| l.split_once('='))
            .map(|(_, v)| v);
        match variable_refusal(var, value) {
            Some(reason) => deny(format!("`{program} {}`: {reason}", arg.shown())),
            None => Ok(()),
        }
    }

    pub(crate) fn read(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "adinNptu",
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        for item in &items {
            match item {
                Item::Short { letter: 'a', .. } => {
                    if let Some(v) = item.value_arg() {
                        self.assigned_name("read -a", &v)?;
                    }
                }
                Item::Operand(a) => self.assigned_name("read", a)?,
                _ => {}
            }
        }
        Ok(())
    }

    pub(crate) fn mapfile(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "dnOsuCc",
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        if items.iter().any(|i| i.is(Some('C'), None)) {
            return deny(format!(
                "`{name} -C` runs a string as a command for every few lines, which cannot be checked; process the lines in a loop"
            ));
        }
        for a in options::operands(&items) {
            self.assigned_name(name, a)?;
        }
        Ok(())
    }

    pub(crate) fn printf(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "v",
            ..Spec::default()
        };
        for item in options::parse(args, &spec) {
            if item.is(Some('v'), None) {
                if let Some(v) = item.value_arg() {
                    self.assigned_name("printf -v", &v)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn getopts(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        match args.get(1) {
            Some(var) => self.assigned_name("getopts", var),
            None => Ok(()),
        }
    }

    pub(crate) fn wait(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "p",
            ..Spec::default()
        };
        for item in options::parse(args, &spec) {
            if item.is(Some('p'), None) {
                if let Some(v) = item.value_arg() {
                    self.assigned_name("wait -p", &v)?;
                }
            }
        }
        Ok(())
    }

    /// `unset` may unset anything; a function it removes is no longer run for its name.
    pub(crate) fn unset(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        for a in args {
            match a.plain() {
                Some(t) if t.starts_with('-') => {}
                Some(t) => {
                    self.functions.remove(t);
                }
                None => self.functions.clear(),
            }
        }
        Ok(())
    }

    pub(crate) fn set(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            i += 1;
            let Some(text) = a.plain() else {
                return deny(format!(
                    "`set {}`: computed options cannot be checked; write them out",
                    a.raw
                ));
            };
            if text == "--" || text == "-" || !(text.starts_with('-') || text.starts_with('+')) {
                // Positional parameters from here on.
                return Ok(());
            }
            let on = text.starts_with('-');
            for flag in text[1..].chars() {
                if flag == 'o' {
                    let Some(option) = args.get(i) else {
                        continue; // `set -o` alone lists the options
                    };
                    i += 1;
                    let Some(option) = option.plain() else {
                        return deny(
                            "`set -o` with a computed option name cannot be checked; write it out",
                        );
                    };
                    option_refusal("set", option, on)?;
                    continue;
                }
                let Some(option) = set_flag_name(flag) else {
                    return deny(format!(
                        "`set {text}`: `-{flag}` is not a shell option the policy knows; use -e, -u, -x, -o pipefail and the like"
                    ));
                };
                option_refusal("set", option, on)?;
            }
        }
        Ok(())
    }

    pub(crate) fn shopt(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut on: Option<bool> = None;
        for a in args {
            let Some(text) = a.plain() else {
                return deny(format!(
                    "`shopt {}`: computed option names cannot be checked; write them out",
                    a.raw
                ));
            };
            if let Some(flags) = text.strip_prefix('-') {
                for f in flags.chars() {
                    match f {
                        's' => on = Some(true),
                        'u' => on = Some(false),
                        _ => {}
                    }
                }
                continue;
            }
            if let Some(on) = on {
                option_refusal("shopt", text, on)?;
            }
        }
        Ok(())
    }

    pub(crate) fn hash(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        for a in args {
            let text = a.option_text();
            if text.starts_with('-') && text.contains('p') {
                return deny("`hash -p` makes a command name run another program; call the program by its path instead");
            }
        }
        Ok(())
    }

    pub(crate) fn command_builtin(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
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

    /// `bash` and `sh`: a `-c` string or code on stdin is checked like the command; a script
    /// must be in the project (it then runs under the kernel's confinement).
    pub(crate) fn shell(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let stdin = std::mem::take(&mut self.stdin);
        let mut i = 0;
        let mut command_string = false;
        let mut read_stdin = false;
        while let Some(a) = args.get(i) {
            let Some(v) = a.plain() else {
                // The code string after `-c`, or a script the policy cannot name: the script
                // runs under the kernel's confinement like any other.
                break;
            };
            if v == "--" || v == "-" {
                i += 1;
                break;
            }
            if let Some(long) = v.strip_prefix("--") {
                const FINE: &[&str] = &[
                    "norc",
                    "noprofile",
                    "posix",
                    "noediting",
                    "restricted",
                    "verbose",
                    "version",
                    "help",
                ];
                if FINE.contains(&long) {
                    i += 1;
                    continue;
                }
                return deny(format!("`{name} {v}` is not supported; run `{name} script.sh` with a script in the project, or `{name} -c '…'`"));
            }
            let Some(flags) = v.strip_prefix('-').or_else(|| v.strip_prefix('+')) else {
                break;
            };
            let on = v.starts_with('-');
            i += 1;
            for flag in flags.chars() {
                match flag {
                    'c' => command_string = true,
                    's' => read_stdin = true,
                    'o' | 'O' => {
                        let Some(option) = args.get(i).and_then(Arg::plain) else {
                            return deny(format!("`{name} -{flag}` needs a plain option name"));
                        };
                        i += 1;
                        option_refusal(name, option, on)?;
                    }
                    'r' => {}
                    'i' | 'l' => return deny(format!(
                        "`{name} -{flag}` starts an interactive or login shell, which reads startup files and input that cannot be checked; run `{name} script.sh` or `{name} -c '…'`"
                    )),
                    _ => match set_flag_name(flag) {
                        Some(option) => option_refusal(name, option, on)?,
                        None => {
                            return deny(format!("`{name} -{flag}` is not supported; run `{name} script.sh` with a script in the project, or `{name} -c '…'`"))
                        }
                    },
                }
            }
        }
        if command_string {
            let Some(code) = args.get(i) else {
                return deny(format!("`{name} -c` needs a command string"));
            };
            let Some(code) = code.literal.as_deref() else {
                return deny(format!(
                    "`{name} -c {}`: the command string is computed and cannot be checked; write it out",
                    code.raw
                ));
            };
            return self.child_shell(code).map_err(|d| PolicyDenial {
                reason: format!("(inside `{name} -c`) {}", d.reason),
            });
        }
        if let (false, Some(script)) = (read_stdin, args.get(i)) {
            return self.script(name, script);
        }
        match stdin {
            Stdin::Text(code) => self.child_shell(&code).map_err(|d| PolicyDenial {
                reason: format!("(in the code `{name}` reads on stdin) {}", d.reason),
            }),
            Stdin::File(file) => self.script(name, &file),
            Stdin::Computed => deny(format!(
                "`{name}` would read code built by expansions in a here-document or here-string, which cannot be checked; quote the delimiter (<<'EOF') so the code is literal"
            )),
            Stdin::Inherited => deny(format!(
                "`{name}` without a script reads code from its input, which cannot be checked; save the code in a script inside the project and run `{name} script.sh`, or give it in a quoted here-document (`{name} <<'EOF'`)"
            )),
        }
    }

    /// A script run by a shell: inside the project (or the temp dir), or unknown.
    fn script(&mut self, name: &str, script: &Arg) -> Result<(), PolicyDenial> {
        let Some(value) = script.value.as_ref().filter(|_| !script.glob) else {
            return if script.value.is_none() {
                Ok(())
            } else {
                deny(format!(
                    "`{name} {}`: give the script's path without glob characters",
                    script.raw
                ))
            };
        };
        let path: String = value.iter().map(|q| q.c).collect();
        if path.starts_with(TMP_MARK) {
            return Ok(());
        }
        if self.read_inside(&path.replacen(PWD_MARK, ".", 1)) {
            return Ok(());
        }
        if self.in_temp_dir(&normalize_lexically(std::path::Path::new(&path))) {
            return Ok(());
        }
        deny(format!(
            "`{name} {}`: only scripts inside the project (or $TMPDIR) may be run",
            script.shown()
        ))
    }
}

fn option_refusal(program: &str, option: &str, on: bool) -> Result<(), PolicyDenial> {
    match shell_option_refusal(option, on) {
        Some(reason) => deny(format!(
            "`{program}`: turning {} the shell option `{option}` is not allowed: {reason}",
            if on { "on" } else { "off" }
        )),
        None => Ok(()),
    }
}
