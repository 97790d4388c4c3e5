//! Archivers: `tar`, `zip`, `unzip`, `gzip`. Some run programs by themselves
//! (`tar --checkpoint-action=exec=`, `--to-command`, `--use-compress-program`/`-I`,
//! `zip -TT`/`--unzip-command`), some delete what they archive (`tar --remove-files`,
//! `zip -m`); what they write must stay inside the project.

use super::super::paths::Effect;
use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use super::options::{self, Spec};
use super::{find_long, means};

const TAR: Spec = Spec {
    short_values: "bCfFgHIKLNTVX",
    short_optional: "",
    long_values: &[
        "directory",
        "file",
        "files-from",
        "exclude",
        "exclude-from",
        "use-compress-program",
        "to-command",
        "info-script",
        "new-volume-script",
        "rsh-command",
        "rmt-command",
        "listed-incremental",
        "index-file",
        "volno-file",
        "transform",
        "xform",
        "format",
        "owner",
        "group",
        "mode",
        "mtime",
        "newer",
        "newer-mtime",
        "after-date",
        "label",
        "blocking-factor",
        "record-size",
        "tape-length",
        "suffix",
        "strip-components",
        "starting-file",
        "level",
        "warning",
        "sort",
        "quoting-style",
        "pax-option",
        "hole-detection",
        "owner-map",
        "group-map",
        "xattrs-include",
        "xattrs-exclude",
        "checkpoint-action",
    ],
    long_optional: &[
        "checkpoint",
        "backup",
        "occurrence",
        "totals",
        "one-top-level",
    ],
    long_flags: &[
        "create",
        "extract",
        "get",
        "list",
        "append",
        "update",
        "concatenate",
        "catenate",
        "diff",
        "compare",
        "delete",
        "verbose",
        "gzip",
        "gunzip",
        "bzip2",
        "xz",
        "zstd",
        "lzma",
        "lzip",
        "lzop",
        "compress",
        "uncompress",
        "auto-compress",
        "to-stdout",
        "keep-old-files",
        "keep-newer-files",
        "overwrite",
        "remove-files",
        "absolute-names",
        "force-local",
        "preserve-permissions",
        "same-permissions",
        "no-same-owner",
        "numeric-owner",
        "verify",
        "wildcards",
        "no-recursion",
        "recursion",
        "exclude-vcs",
        "exclude-vcs-ignores",
        "dereference",
        "one-file-system",
        "sparse",
        "ignore-zeros",
        "help",
        "version",
    ],
    permute: true,
    single_dash_long: false,
};

impl Checker<'_> {
    pub(crate) fn tar(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        // Old style: the first argument is a bundle of letters without a dash (`tar xzf a.tgz`).
        let normalised: Vec<Arg>;
        let args = match args.first().and_then(Arg::plain) {
            Some(first)
                if !first.starts_with('-')
                    && !first.is_empty()
                    && first.chars().all(|c| c.is_ascii_alphabetic()) =>
            {
                normalised = std::iter::once(Arg::fixed(&format!("-{first}")))
                    .chain(args[1..].iter().cloned())
                    .collect();
                &normalised[..]
            }
            _ => args,
        };
        let items = options::parse(args, &TAR);
        const RUNS: &[&str] = &[
            "checkpoint-action",
            "to-command",
            "use-compress-program",
            "info-script",
            "new-volume-script",
            "rsh-command",
            "rmt-command",
        ];
        if let Some((given, option)) = find_long(&items, RUNS, &TAR) {
            return deny(format!(
                "`tar --{given}` (--{option}) makes tar run another program; use tar's own options (-z, -j, -J) and run other programs yourself"
            ));
        }
        if items
            .iter()
            .any(|i| i.is(Some('I'), None) || i.is(Some('F'), None))
        {
            return deny("`tar -I`/`-F` make tar run another program; use -z, -j or -J, and run other programs yourself");
        }
        let has = |letter: char, long: &str| {
            items
                .iter()
                .any(|i| i.is(Some(letter), None) || means(i, long, &TAR))
        };
        let creates = has('c', "create")
            || has('r', "append")
            || has('u', "update")
            || has('A', "concatenate");
        let extracts = has('x', "extract") || items.iter().any(|i| means(i, "get", &TAR));
        let force_local = items.iter().any(|i| means(i, "force-local", &TAR));
        for item in items.iter().filter(|i| i.is(Some('f'), Some("file"))) {
            let Some(archive) = item.value_arg() else {
                continue;
            };
            if let Some(text) = archive.plain() {
                let host = text.split('/').next().unwrap_or("");
                if host.contains(':') && !force_local {
                    return deny(format!(
                        "`tar -f {text}` names an archive on another host, which tar reaches through a remote shell; give a local path (or add --force-local)"
                    ));
                }
            }
            if creates && archive.plain() != Some("-") {
                self.check_target("tar -f", &archive, Effect::Write)?;
            }
        }
        if extracts {
            self.option_values_are(
                "tar -C",
                &items,
                Some('C'),
                Some("directory"),
                Effect::Write,
            )?;
            if items
                .iter()
                .any(|i| i.is(Some('P'), None) || means(i, "absolute-names", &TAR))
            {
                return deny("`tar -x --absolute-names` writes wherever the archive says, outside the project too; extract without it");
            }
        }
        for long in ["listed-incremental", "index-file", "volno-file"] {
            self.option_values_are("tar", &items, None, Some(long), Effect::Write)?;
        }
        if items.iter().any(|i| means(i, "remove-files", &TAR)) {
            self.operands_are("tar --remove-files", &items, Effect::Delete)?;
        }
        Ok(())
    }

    /// `zip [options] ZIPFILE [FILES]`: ZIPFILE is written; with `-m` the files are deleted.
    pub(crate) fn zip(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        // zip has two-letter short options (`-TT`, `-tt`, `-lf`); read them by hand.
        const WITH_VALUE: &[&str] = &[
            "-b",
            "-n",
            "-t",
            "-tt",
            "-O",
            "-Z",
            "-P",
            "-s",
            "-sp",
            "-lf",
            "-la",
            "-li",
            "-TT",
            "-x",
            "-i",
            "--output-file",
            "--unzip-command",
        ];
        let mut operands: Vec<&Arg> = Vec::new();
        let mut moves = false;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            i += 1;
            let text = a.option_text();
            if let Some(long) = text.strip_prefix("--") {
                let name = long.split('=').next().unwrap_or("");
                if super::options::abbreviates(name, "unzip-command") {
                    return deny("`zip --unzip-command` makes zip run another program; test the archive with `unzip -t` yourself");
                }
                if super::options::abbreviates(name, "output-file") {
                    let value = match long.split_once('=') {
                        Some((_, v)) => Arg::fixed(v),
                        None => {
                            let next = args.get(i).cloned();
                            i += 1;
                            next.unwrap_or_else(|| Arg::fixed(""))
                        }
                    };
                    self.check_target("zip --output-file", &value, Effect::Write)?;
                }
                if super::options::abbreviates(name, "move") {
                    moves = true;
                }
                continue;
            }
            if text.starts_with("-TT") {
                return deny("`zip -TT` makes zip run another program; test the archive with `unzip -t` yourself");
            }
            if text.starts_with('-') && text.len() > 1 {
                if text == "-O" {
                    if let Some(out) = args.get(i) {
                        self.check_target("zip -O", out, Effect::Write)?;
                    }
                }
                if !text.starts_with("-l") && !text.starts_with("-s") && text[1..].contains('m') {
                    moves = true;
                }
                if WITH_VALUE.contains(&text) {
                    i += 1;
                }
                continue;
            }
            operands.push(a);
        }
        if let Some((zipfile, files)) = operands.split_first() {
            if zipfile.plain() != Some("-") {
                self.check_target("zip", zipfile, Effect::Write)?;
            }
            if moves {
                for f in files {
                    self.check_target("zip -m", f, Effect::Delete)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn unzip(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = Spec {
            short_values: "dPx",
            permute: true,
            ..Spec::default()
        };
        let items = options::parse(args, &spec);
        self.option_values_are("unzip -d", &items, Some('d'), None, Effect::Write)
    }

    /// `gzip`/`gunzip` replace each file with its (de)compressed form, unless writing to stdout.
    pub(crate) fn gzip(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "S",
            short_optional: "",
            long_values: &["suffix"],
            long_optional: &[],
            long_flags: &[
                "stdout",
                "to-stdout",
                "decompress",
                "uncompress",
                "force",
                "keep",
                "list",
                "no-name",
                "name",
                "quiet",
                "recursive",
                "test",
                "verbose",
                "fast",
                "best",
                "rsyncable",
                "synchronous",
                "help",
                "license",
                "version",
            ],
            permute: true,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        let flag = |letter: char, long: &str| {
            items
                .iter()
                .any(|i| i.is(Some(letter), None) || means(i, long, &SPEC))
        };
        if flag('c', "stdout") || flag('t', "test") || flag('l', "list") {
            return Ok(());
        }
        let effect = if flag('r', "recursive") {
            Effect::Delete
        } else {
            Effect::Write
        };
        self.operands_are(name, &items, effect)
    }
}
