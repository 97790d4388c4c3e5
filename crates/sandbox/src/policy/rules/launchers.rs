//! Programs that launch other programs (`env`, `nice`, `nohup`, `time`, `timeout`, `xargs`,
//! `find -exec`): the launched command is checked in turn.

use super::super::allowlist::dangerous_variable;
use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use super::skip_options;

impl Checker<'_> {
    pub(crate) fn env(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let Some(v) = a.plain() else {
                return deny(format!(
                    "`env` argument `{}` is computed; write it out",
                    a.raw
                ));
            };
            match v {
                "-i" | "--ignore-environment" | "-0" | "--null" | "-" | "--" | "-v" | "--debug" => i += 1,
                "-u" | "--unset" => i += 2,
                _ if v.starts_with("--unset=") => i += 1,
                _ if v.starts_with("-S") || v.starts_with("--split-string") => {
                    return deny("`env -S` splits a string into a command that cannot be checked; write the command out")
                }
                _ if v.starts_with("-C") || v.starts_with("--chdir") => {
                    return deny("`env -C` changes directory; use `cd` inside the project")
                }
                _ if v.starts_with('-') => return deny(format!("`env {v}` is not supported")),
                _ if v.contains('=') => {
                    let var = v.split('=').next().unwrap_or("");
                    if dangerous_variable(var) {
                        return deny(format!(
                            "setting `{var}` changes which programs run or what they load; it is not allowed"
                        ));
                    }
                    i += 1;
                }
                _ => break,
            }
        }
        let rest = args.get(i..).unwrap_or(&[]);
        if rest.is_empty() {
            return Ok(());
        }
        self.launch("env", rest)
    }

    pub(crate) fn after_options(
        &mut self,
        name: &str,
        args: &[Arg],
        with_value: &[&str],
    ) -> Result<(), PolicyDenial> {
        let start = skip_options(args, with_value);
        let rest = args.get(start..).unwrap_or(&[]);
        if name == "time" {
            // `time -o FILE` writes FILE.
            for pair in args.windows(2) {
                if matches!(pair[0].plain(), Some("-o") | Some("--output")) {
                    self.arg_write_path("time", &pair[1])?;
                }
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        self.launch(name, rest)
    }

    pub(crate) fn launch(&mut self, launcher: &str, argv: &[Arg]) -> Result<(), PolicyDenial> {
        let Some(first) = argv.first() else {
            return deny(format!("`{launcher}` needs a command to run"));
        };
        if first.plain().is_none() {
            return deny(format!(
                "`{launcher}` launches `{}`, which is computed; write the command name out literally",
                first.raw
            ));
        }
        self.argv(argv).map_err(|d| PolicyDenial {
            reason: format!("(launched by `{launcher}`) {}", d.reason),
        })
    }

    pub(crate) fn find(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut starts: Vec<&Arg> = Vec::new();
        let mut i = 0;
        // Start points come before the first expression.
        while let Some(a) = args.get(i) {
            let v = a.literal.as_deref().unwrap_or(&a.raw);
            if v.starts_with('-') || v == "(" || v == "!" || v == "\\(" {
                break;
            }
            starts.push(a);
            i += 1;
        }
        while let Some(a) = args.get(i) {
            let v = a.plain().unwrap_or("");
            match v {
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    // The launched command gets paths found under the start points, so those
                    // must be inside the project.
                    for s in &starts {
                        match s.plain() {
                            Some(p) if self.read_inside(p) => {}
                            _ => {
                                return deny(format!(
                                    "`find {} {v} ...`: commands run by find may only get paths inside the project; start the search inside it",
                                    s.raw
                                ))
                            }
                        }
                    }
                    let mut end = i + 1;
                    while let Some(b) = args.get(end) {
                        if matches!(b.plain(), Some(";") | Some("+")) {
                            break;
                        }
                        end += 1;
                    }
                    let launched = args.get(i + 1..end).unwrap_or(&[]);
                    self.launch(&format!("find {v}"), launched)?;
                    i = end + 1;
                }
                "-delete" => {
                    // `find -delete` without a start point starts at `.`, inside the project.
                    for s in &starts {
                        self.arg_write_path("find -delete", s)?;
                    }
                    i += 1;
                }
                "-fprint" | "-fprint0" | "-fprintf" | "-fls" => {
                    if let Some(f) = args.get(i + 1) {
                        self.arg_write_path(&format!("find {v}"), f)?;
                    }
                    i += 2;
                }
                _ => i += 1,
            }
        }
        Ok(())
    }
}
