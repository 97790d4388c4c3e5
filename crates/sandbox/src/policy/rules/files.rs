//! Programs that write or delete files: every path they write, by operand or by option
//! (`cp -t DIR`, `--target-directory=`, `sort -o`, `patch -o`), must stay inside the project,
//! and what they delete may not be the project or its history.

use super::super::paths::Effect;
use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use super::options::{self, Item, Spec};
use super::{find_long, means};

impl Checker<'_> {
    /// `rm`, `rmdir`: every operand is deleted.
    pub(crate) fn remove(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "",
            short_optional: "",
            long_values: &[],
            long_optional: &["interactive", "preserve-root"],
            long_flags: &[
                "force",
                "one-file-system",
                "no-preserve-root",
                "recursive",
                "dir",
                "verbose",
                "parents",
                "ignore-fail-on-non-empty",
                "help",
                "version",
            ],
            permute: true,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        self.operands_are(name, &items, Effect::Delete)
    }

    /// `mkdir`, `touch`, `chmod`, `tee`: every operand is written.
    pub(crate) fn write_operands(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = match name {
            "mkdir" => Spec {
                short_values: "m",
                long_values: &["mode"],
                long_optional: &["context"],
                long_flags: &["parents", "verbose", "help", "version"],
                permute: true,
                ..Spec::default()
            },
            "touch" => Spec {
                short_values: "drt",
                long_values: &["date", "reference", "time"],
                long_flags: &["no-create", "no-dereference", "help", "version"],
                permute: true,
                ..Spec::default()
            },
            "tee" => Spec {
                long_optional: &["output-error"],
                long_flags: &["append", "ignore-interrupts", "help", "version"],
                permute: true,
                ..Spec::default()
            },
            _ => Spec {
                long_values: &["reference"],
                long_flags: &[
                    "changes",
                    "silent",
                    "quiet",
                    "verbose",
                    "no-preserve-root",
                    "preserve-root",
                    "recursive",
                    "help",
                    "version",
                ],
                permute: true,
                ..Spec::default()
            },
        };
        let items = options::parse(args, &spec);
        self.operands_are(name, &items, Effect::Write)
    }

    /// `cp`, `mv`, `ln`: the destination (`-t DIR`, `--target-directory=DIR`, or the last
    /// operand) is written; `mv` removes its sources, `ln` writes every operand (a link that
    /// points out of the project is refused where it is made).
    pub(crate) fn copy_move(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "St",
            short_optional: "",
            long_values: &["target-directory", "suffix", "no-preserve", "sparse"],
            long_optional: &["backup", "preserve", "reflink", "context", "update"],
            long_flags: &[
                "archive",
                "attributes-only",
                "force",
                "interactive",
                "link",
                "dereference",
                "no-clobber",
                "no-dereference",
                "parents",
                "recursive",
                "remove-destination",
                "strip-trailing-slashes",
                "symbolic-link",
                "no-target-directory",
                "one-file-system",
                "verbose",
                "exchange",
                "logical",
                "physical",
                "relative",
                "debug",
                "help",
                "version",
            ],
            permute: true,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        let target_option = items
            .iter()
            .any(|i| i.is(Some('t'), None) || means(i, "target-directory", &SPEC));
        self.option_values_are(
            name,
            &items,
            Some('t'),
            Some("target-directory"),
            Effect::Write,
        )?;
        let operands = options::operands(&items);
        if name == "ln" {
            return self.link(&items, &operands, target_option);
        }
        let (sources, destination) = match (target_option, operands.split_last()) {
            (true, _) => (operands.as_slice(), None),
            (false, Some((last, rest))) if !rest.is_empty() => (rest, Some(*last)),
            (false, _) => (operands.as_slice(), None),
        };
        if name == "mv" {
            for source in sources {
                self.check_target(name, source, Effect::Delete)?;
            }
        }
        if let Some(destination) = destination {
            self.check_target(name, destination, Effect::Write)?;
        }
        Ok(())
    }

    /// `ln`: the link is written; a symbolic link's target is text resolved from the link's
    /// directory, and may not point out of the project (the harness and the file tools refuse
    /// to follow such links, and they would carry writes out of it); a hard link's target must
    /// be a file of the project.
    fn link(
        &self,
        items: &[Item<'_>],
        operands: &[&Arg],
        target_option: bool,
    ) -> Result<(), PolicyDenial> {
        let symbolic = items
            .iter()
            .any(|i| i.is(Some('s'), None) || i.is(None, Some("symbolic")));
        let directory = items
            .iter()
            .find(|i| i.is(Some('t'), Some("target-directory")))
            .and_then(Item::value_arg);
        let (targets, link) = match (target_option, operands.split_last()) {
            (true, _) => (operands, directory),
            (false, Some((last, rest))) if !rest.is_empty() => (rest, Some((*last).clone())),
            (false, _) => (operands, Some(Arg::fixed("."))),
        };
        let Some(link) = link else { return Ok(()) };
        self.check_target("ln", &link, Effect::Write)?;
        for target in targets {
            if !symbolic {
                self.check_target("ln", target, Effect::Write)?;
                continue;
            }
            let (Some(target_text), Some(link_text)) = (target.plain(), link.plain()) else {
                continue; // computed: left to the kernel and the tools that refuse such links
            };
            let link_dir = if target_option || operands.len() > 2 || link_text.ends_with('/') {
                std::path::PathBuf::from(link_text)
            } else {
                std::path::Path::new(link_text)
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default()
            };
            let points_to = link_dir.join(target_text);
            if !self.read_inside(&points_to.to_string_lossy()) {
                return deny(format!(
                    "`ln -s {target_text} {link_text}` makes a link pointing out of the project ({}); link only to files inside it",
                    points_to.display()
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn sort(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "ktoST",
            short_optional: "",
            long_values: &[
                "key",
                "field-separator",
                "output",
                "buffer-size",
                "temporary-directory",
                "compress-program",
                "batch-size",
                "parallel",
                "random-source",
                "files0-from",
                "sort",
            ],
            long_optional: &["check"],
            long_flags: &[
                "ignore-leading-blanks",
                "dictionary-order",
                "ignore-case",
                "general-numeric-sort",
                "ignore-nonprinting",
                "month-sort",
                "human-numeric-sort",
                "numeric-sort",
                "random-sort",
                "reverse",
                "version-sort",
                "merge",
                "stable",
                "unique",
                "zero-terminated",
                "debug",
                "help",
                "version",
            ],
            permute: true,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        if let Some((given, _)) = find_long(&items, &["compress-program"], &SPEC) {
            return deny(format!(
                "`sort --{given}` makes sort run another program; sort without it"
            ));
        }
        self.option_values_are("sort", &items, Some('o'), Some("output"), Effect::Write)?;
        self.option_values_are(
            "sort",
            &items,
            Some('T'),
            Some("temporary-directory"),
            Effect::Write,
        )
    }

    /// `uniq IN OUT` writes OUT.
    pub(crate) fn uniq(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "fswD",
            long_values: &["skip-fields", "skip-chars", "check-chars"],
            long_optional: &["all-repeated", "group"],
            permute: true,
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        if let Some(out) = options::operands(&items).get(1) {
            self.check_target("uniq", out, Effect::Write)?;
        }
        Ok(())
    }

    pub(crate) fn patch(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "BdDFgioprVYz",
            short_optional: "",
            long_values: &[
                "prefix",
                "directory",
                "ifdef",
                "fuzz",
                "get",
                "input",
                "output",
                "strip",
                "reject-file",
                "version-control",
                "basename-prefix",
                "suffix",
                "reject-format",
                "read-only",
                "quoting-style",
            ],
            long_optional: &["backup-if-mismatch"],
            long_flags: &[],
            permute: true,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        for (letter, long) in [
            ('o', "output"),
            ('r', "reject-file"),
            ('B', "prefix"),
            ('d', "directory"),
            ('Y', "basename-prefix"),
        ] {
            self.option_values_are("patch", &items, Some(letter), Some(long), Effect::Write)?;
        }
        if let Some(original) = options::operands(&items).first() {
            self.check_target("patch", original, Effect::Write)?;
        }
        Ok(())
    }

    pub(crate) fn mktemp(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "p",
            long_values: &["suffix"],
            long_optional: &["tmpdir"],
            permute: true,
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        let in_tmpdir = items
            .iter()
            .any(|i| matches!(i, Item::Short { letter: 't', .. }) || i.is(None, Some("tmpdir")));
        self.option_values_are("mktemp", &items, Some('p'), Some("tmpdir"), Effect::Write)?;
        let with_dir = items.iter().any(|i| i.is(Some('p'), Some("tmpdir")));
        if !in_tmpdir && !with_dir {
            self.operands_are("mktemp", &items, Effect::Write)?;
        }
        Ok(())
    }

    /// `xxd IN OUT` writes OUT.
    pub(crate) fn xxd(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "cglnos",
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        if let Some(out) = options::operands(&items).get(1) {
            self.check_target("xxd", out, Effect::Write)?;
        }
        Ok(())
    }
}
