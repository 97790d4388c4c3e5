//! Programs that write files: every path they write must stay inside the project.

use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};

impl Checker<'_> {
    /// Checks every non-option argument as a path the command writes.
    pub(crate) fn path_args(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut options_done = false;
        for a in args {
            let text = a.literal.as_deref().unwrap_or(&a.raw);
            if !options_done && text == "--" {
                options_done = true;
                continue;
            }
            if !options_done && text.starts_with('-') && text.len() > 1 {
                continue;
            }
            self.arg_write_path(name, a)?;
        }
        Ok(())
    }

    pub(crate) fn arg_write_path(&self, name: &str, a: &Arg) -> Result<(), PolicyDenial> {
        let Some(value) = a.literal.as_deref() else {
            return deny(format!(
                "`{name}` argument `{}` is computed (variables or substitutions); write the path out so it can be checked",
                a.raw
            ));
        };
        if a.glob && (value.contains('{') || value.contains("..")) {
            return deny(format!(
                "`{name}` argument `{value}` uses brace expansion or `..` with globs; write the paths out"
            ));
        }
        // A glob stays below its fixed prefix; check that prefix.
        let checked = if a.glob {
            let cut = value.find(['*', '?', '[']).unwrap_or(value.len());
            let prefix = &value[..cut];
            match prefix.rfind('/') {
                Some(0) => "/",
                Some(slash) => &value[..slash],
                None => ".",
            }
        } else {
            value
        };
        self.write_path(checked).map_err(|reason| PolicyDenial {
            reason: format!("`{name} {value}`: {value} {reason}"),
        })
    }
}
