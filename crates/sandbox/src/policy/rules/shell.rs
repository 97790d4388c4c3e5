//! Shells and the builtins that change the shell's state: `bash`/`sh` scripts and `-c` strings,
//! `cd`.

use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use crate::path::Access;

impl Checker<'_> {
    pub(crate) fn cd(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let dirs: Vec<&Arg> = args
            .iter()
            .filter(|a| !(a.plain().is_some_and(|v| v.starts_with('-') && v.len() > 1)))
            .collect();
        let Some(dir) = dirs.first() else {
            return deny(format!("`{name}` without a directory goes to $HOME, outside the project; give a directory inside it"));
        };
        let Some(dir) = dir.plain() else {
            return deny(format!(
                "`{name} {}`: the directory must be a plain path inside the project",
                dir.raw
            ));
        };
        if dir == "-" {
            return deny(format!(
                "`{name} -` is not supported; give a directory inside the project"
            ));
        }
        let mut next = Vec::new();
        for cwd in &self.cwds {
            match self.project.resolve_from(cwd, dir, Access::Read) {
                Ok(p) => next.push(p),
                Err(e) => {
                    return deny(format!(
                        "`{name} {dir}` leaves the project ({e}); commands run inside the project directory"
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

    pub(crate) fn shell(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let Some(v) = a.plain() else {
                return deny(format!(
                    "`{name}` argument `{}` is computed; write it out",
                    a.raw
                ));
            };
            if v == "-c" || (v.starts_with('-') && !v.starts_with("--") && v.contains('c')) {
                let Some(code) = args.get(i + 1) else {
                    return deny(format!("`{name} -c` needs a command string"));
                };
                let Some(code) = code.literal.as_deref() else {
                    return deny(format!(
                        "`{name} -c {}`: the command string is computed and cannot be checked; write it out",
                        code.raw
                    ));
                };
                return self.program(code).map_err(|d| PolicyDenial {
                    reason: format!("(inside `{name} -c`) {}", d.reason),
                });
            }
            if v == "-o" || v == "+o" || v == "-O" || v == "+O" {
                i += 2;
                continue;
            }
            if v == "--" {
                i += 1;
                break;
            }
            if v.starts_with("--") {
                if matches!(v, "--norc" | "--noprofile" | "--posix" | "--noediting") {
                    i += 1;
                    continue;
                }
                return deny(format!("`{name} {v}` is not supported; run `{name} script.sh` with a script in the project"));
            }
            if let Some(flags) = v.strip_prefix('-').or_else(|| v.strip_prefix('+')) {
                if flags.chars().all(|c| "euxvnEThBCfahkmpPt".contains(c)) && !flags.is_empty() {
                    i += 1;
                    continue;
                }
                return deny(format!("`{name} {v}` is not supported (reading code from stdin or interactive shells cannot be checked); run `{name} script.sh` with a script in the project"));
            }
            break;
        }
        let Some(script) = args.get(i) else {
            return deny(format!(
                "`{name}` without a script reads code from its input, which cannot be checked; save the code in a script inside the project and run `{name} script.sh`"
            ));
        };
        match script.plain() {
            Some(s) if self.read_inside(s) => Ok(()),
            _ => deny(format!(
                "`{name} {}`: only scripts inside the project may be run",
                script.raw
            )),
        }
    }
}
