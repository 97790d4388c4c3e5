//! The database URL: parsed once, shown only without its password.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How long connecting may take when the URL does not say (`connect_timeout=SECS`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `postgres://` (or `postgresql://`) URL, parsed. Its [`fmt::Display`] never shows the
/// password.
#[derive(Clone)]
pub struct LedgerUrl {
    config: tokio_postgres::Config,
    shown: String,
    /// The password, to scrub from error messages that might quote it.
    password: Option<String>,
}

/// A URL that cannot be used; the message shows the URL without its password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LedgerUrlError(String);

impl LedgerUrl {
    /// Parses `postgres://USER:PASSWORD@HOST:PORT/DATABASE?options` (libpq's URL form, as
    /// `tokio-postgres` reads it; a Unix socket directory as `host=/path` in the options).
    pub fn parse(raw: &str) -> Result<LedgerUrl, LedgerUrlError> {
        let raw = raw.trim();
        let shown = redact(raw);
        let scheme_ok = ["postgres://", "postgresql://"]
            .iter()
            .any(|s| raw.len() >= s.len() && raw[..s.len()].eq_ignore_ascii_case(s));
        if !scheme_ok {
            return Err(LedgerUrlError(format!(
                "the ledger {shown:?} is not a PostgreSQL URL; give postgres://USER:PASSWORD@HOST:PORT/DATABASE (or leave `ledger` unset for the file ledger in the state dir)"
            )));
        }
        let mut config = tokio_postgres::Config::from_str(raw).map_err(|e| {
            LedgerUrlError(format!(
                "the ledger URL {shown} cannot be read: {e}; the form is postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_hosts().is_empty() {
            return Err(LedgerUrlError(format!(
                "the ledger URL {shown} names no host; give postgres://USER:PASSWORD@HOST:PORT/DATABASE (or host=/socket/dir)"
            )));
        }
        if config.get_user().is_none() {
            return Err(LedgerUrlError(format!(
                "the ledger URL {shown} names no user; give postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            )));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("loopwright");
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        Ok(LedgerUrl {
            config,
            shown,
            password,
        })
    }

    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// `text` with the password replaced, in case a message quotes it.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) => text.replace(p.as_str(), "***"),
            None => text.to_string(),
        }
    }
}

impl fmt::Display for LedgerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for LedgerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LedgerUrl").field(&self.shown).finish()
    }
}

/// A database URL (or libpq `key=value` string) with every password replaced by `***`: the
/// one in the user part of the URL and any `password=` option.
pub fn redact(raw: &str) -> String {
    let mut out = raw.to_string();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let rest = &out[start..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                out.replace_range(start + colon + 1..start + at, "***");
            }
        }
    }
    redact_option(&out)
}

/// Replaces the value of every `password=` option (URL query or `key=value` form).
fn redact_option(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = find_ignore_case(rest, "password=") {
        let boundary = i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&' | b' ' | b'\t');
        let value_start = i + "password=".len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if !boundary {
            continue;
        }
        let end = if rest.starts_with('\'') {
            // libpq quoting: 'it''s' ends at the first lone quote (escapes are \').
            let bytes = rest.as_bytes();
            let mut j = 1;
            while j < bytes.len() && !(bytes[j] == b'\'' && bytes[j - 1] != b'\\') {
                j += 1;
            }
            (j + 1).min(rest.len())
        } else {
            rest.find(['&', ' ', '\t']).unwrap_or(rest.len())
        };
        out.push_str("***");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (raw, shown) in [
            (
                "postgres://lw:s3cret@db.example:5432/ledger",
                "postgres://lw:***@db.example:5432/ledger",
            ),
            (
                "postgresql://lw:p%40ss@db/ledger?sslmode=require",
                "postgresql://lw:***@db/ledger?sslmode=require",
            ),
            (
                "postgres://lw@db/ledger?password=s3cret&sslmode=disable",
                "postgres://lw@db/ledger?password=***&sslmode=disable",
            ),
            (
                "host=db user=lw password=s3cret",
                "host=db user=lw password=***",
            ),
            (
                "host=db password='a b' dbname=x",
                "host=db password=*** dbname=x",
            ),
            ("postgres://lw@db/ledger", "postgres://lw@db/ledger"),
        ] {
            assert_eq!(redact(raw), shown, "{raw}");
        }
        let url = LedgerUrl::parse("postgres://lw:s3cret@127.0.0.1:1/ledger").unwrap();
        assert!(!format!("{url} {url:?}").contains("s3cret"));
        assert_eq!(url.scrub("failed for s3cret"), "failed for ***");
    }

    #[test]
    fn only_postgres_urls_with_a_host_and_a_user_are_taken() {
        let err = LedgerUrl::parse("mysql://lw:s3cret@db/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a PostgreSQL URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = LedgerUrl::parse("postgres://lw:s3cret@db:notaport/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be read"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(LedgerUrl::parse("postgres://db/x").is_err());
        let ok = LedgerUrl::parse("postgres://lw@/ledger?host=/tmp/pg&port=5433").unwrap();
        assert_eq!(ok.config().get_ports(), &[5433]);
    }
}
