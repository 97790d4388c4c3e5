//! HTTP clients: `curl` and `wget` go through the harness's proxy (without network only
//! loopback answers). What they write (`-o`, `--output-dir`, `-D`, `--cookie-jar`, `-O`,
//! `-P`…) must stay inside the project; `wget -e`/`--use-askpass` run programs; `curl
//! --unix-socket` reaches daemons of the host.

use super::super::paths::Effect;
use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use super::options::{self, Spec};
use super::{find_long, means};

impl Checker<'_> {
    pub(crate) fn curl(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "AbcCdDeEFHKmoPQrTtuUwxXYyz",
            short_optional: "",
            long_values: &[
                "output",
                "output-dir",
                "dump-header",
                "cookie-jar",
                "trace",
                "trace-ascii",
                "stderr",
                "libcurl",
                "hsts",
                "alt-svc",
                "etag-save",
                "etag-compare",
                "config",
                "unix-socket",
                "abstract-unix-socket",
                "user-agent",
                "cookie",
                "continue-at",
                "data",
                "data-raw",
                "data-binary",
                "data-ascii",
                "data-urlencode",
                "json",
                "referer",
                "cert",
                "key",
                "cacert",
                "form",
                "form-string",
                "header",
                "max-time",
                "connect-timeout",
                "range",
                "upload-file",
                "user",
                "proxy",
                "proxy-user",
                "request",
                "retry",
                "retry-delay",
                "retry-max-time",
                "url",
                "write-out",
                "resolve",
                "connect-to",
                "max-filesize",
                "limit-rate",
                "time-cond",
                "variable",
                "expand-url",
            ],
            long_optional: &[],
            long_flags: &[
                "remote-name",
                "remote-name-all",
                "create-dirs",
                "silent",
                "show-error",
                "fail",
                "fail-with-body",
                "location",
                "include",
                "head",
                "insecure",
                "verbose",
                "compressed",
                "get",
                "no-progress-meter",
                "http1.1",
                "http2",
                "globoff",
                "help",
                "version",
            ],
            permute: true,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        for (letter, long) in [
            (Some('o'), "output"),
            (None, "output-dir"),
            (Some('D'), "dump-header"),
            (Some('c'), "cookie-jar"),
            (None, "trace"),
            (None, "trace-ascii"),
            (None, "stderr"),
            (None, "libcurl"),
            (None, "hsts"),
            (None, "alt-svc"),
            (None, "etag-save"),
        ] {
            for item in items
                .iter()
                .filter(|i| i.is(letter, None) || means(i, long, &SPEC))
            {
                if let Some(value) = item.value_arg() {
                    if value.plain() != Some("-") {
                        self.check_target(&format!("curl --{long}"), &value, Effect::Write)?;
                    }
                }
            }
        }
        if let Some((given, _)) = find_long(&items, &["unix-socket", "abstract-unix-socket"], &SPEC)
        {
            let socket = items
                .iter()
                .find(|i| means(i, "unix-socket", &SPEC) || means(i, "abstract-unix-socket", &SPEC))
                .and_then(|i| i.value_arg());
            let inside = socket
                .as_ref()
                .and_then(Arg::plain)
                .is_some_and(|p| !given.starts_with("abs") && self.read_inside(p));
            if !inside {
                return deny(format!(
                    "`curl --{given}` connects to a Unix socket outside the project (daemons of the host are not for the agent); talk to your own servers over 127.0.0.1 or a socket in the project"
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn wget(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "OoaPeiBtTwQUlARDIXn",
            short_optional: "",
            long_values: &[
                "output-document",
                "output-file",
                "append-output",
                "directory-prefix",
                "execute",
                "input-file",
                "base",
                "config",
                "save-cookies",
                "load-cookies",
                "warc-file",
                "tries",
                "timeout",
                "wait",
                "quota",
                "user-agent",
                "level",
                "accept",
                "reject",
                "domains",
                "header",
                "post-data",
                "post-file",
                "body-data",
                "body-file",
                "method",
                "user",
                "password",
            ],
            long_optional: &["use-askpass"],
            long_flags: &[
                "quiet",
                "verbose",
                "no-verbose",
                "server-response",
                "spider",
                "recursive",
                "mirror",
                "no-clobber",
                "continue",
                "timestamping",
                "no-check-certificate",
                "no-parent",
                "page-requisites",
                "convert-links",
                "help",
                "version",
            ],
            permute: true,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        if items
            .iter()
            .any(|i| i.is(Some('e'), None) || means(i, "execute", &SPEC))
        {
            return deny("`wget -e` runs wgetrc commands, some of which run programs (use_askpass); pass the equivalent command-line option instead");
        }
        if let Some((given, _)) = find_long(&items, &["use-askpass"], &SPEC) {
            return deny(format!(
                "`wget --{given}` makes wget run another program; give credentials with --user/--password, or none"
            ));
        }
        for (letter, long) in [
            ('O', "output-document"),
            ('o', "output-file"),
            ('a', "append-output"),
            ('P', "directory-prefix"),
        ] {
            for item in items
                .iter()
                .filter(|i| i.is(Some(letter), None) || means(i, long, &SPEC))
            {
                if let Some(value) = item.value_arg() {
                    if value.plain() != Some("-") {
                        self.check_target(&format!("wget --{long}"), &value, Effect::Write)?;
                    }
                }
            }
        }
        for long in ["save-cookies", "warc-file"] {
            self.option_values_are("wget", &items, None, Some(long), Effect::Write)?;
        }
        Ok(())
    }
}
