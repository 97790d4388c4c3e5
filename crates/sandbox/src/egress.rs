//! What the agent's commands may reach through the egress proxy ([`crate::proxy`]): the
//! [`NetworkMode`], the user's `allow_domains` entries, the package registries `registries`
//! allows, and which resolved addresses are the host's own (refused unless named explicitly).
//!
//! Pure decisions, no I/O: the proxy asks [`EgressPolicy::decide`] before it resolves a name
//! (so a denied name is never looked up) and [`EgressPolicy::address_allowed`] for every address
//! the name resolved to (so a public name cannot point the proxy at the host's own services).
//!
//! | mode | allows |
//! | --- | --- |
//! | `off` | nothing, whatever `allow_domains` says |
//! | `registries` | the package registries below and `allow_domains` |
//! | `open` | any destination on any port, except the host's own addresses (below) |
//!
//! The registries of `registries` ([`REGISTRIES`]), on ports 80 and 443:
//!
//! | toolchain | hosts |
//! | --- | --- |
//! | Python (pip, uv, poetry) | `pypi.org`, `files.pythonhosted.org` |
//! | JavaScript (npm, yarn, pnpm) | `registry.npmjs.org`, `registry.yarnpkg.com` |
//! | Rust (cargo) | `crates.io`, `index.crates.io`, `static.crates.io` |
//! | Go | `proxy.golang.org`, `sum.golang.org` |
//!
//! Allow entries (`allow_domains = [...]`, `--allow-domain`), case-insensitive, a trailing dot
//! ignored, ASCII only (write internationalised names in their `xn--` form):
//!
//! | entry | allows |
//! | --- | --- |
//! | `example.com` | exactly `example.com`, ports 80 and 443 |
//! | `.example.com` or `*.example.com` | every subdomain of `example.com` (not `example.com` itself), ports 80 and 443 |
//! | `example.com:8443` | exactly `example.com`, port 8443 only |
//! | `10.0.0.5`, `[fd00::1]:3128` | that address (a literal IP, not a name resolving to it) |
//!
//! An exact entry (a host name or an IP, not a `.suffix`) also lets that destination resolve to a
//! loopback, private or link-local address: that is how a project reaches a registry mirror on
//! the local network, and how tests reach a stand-in registry on 127.0.0.1.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How much network the agent's commands get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// No egress at all (loopback inside the run's own network still works).
    Off,
    /// The package registries of the default toolchains ([`REGISTRIES`]) and `allow_domains`.
    Registries,
    /// Any public destination on any port. The host's own addresses (loopback, private,
    /// link-local: cloud metadata) stay refused unless named in `allow_domains`.
    Open,
}

impl NetworkMode {
    /// The name used in configuration and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Off => "off",
            NetworkMode::Registries => "registries",
            NetworkMode::Open => "open",
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for NetworkMode {
    type Err = String;

    fn from_str(s: &str) -> Result<NetworkMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(NetworkMode::Off),
            "registries" => Ok(NetworkMode::Registries),
            "open" => Ok(NetworkMode::Open),
            _ => Err(format!(
                "network = {s:?}; use \"off\", \"registries\" or \"open\""
            )),
        }
    }
}

/// One toolchain's package registry hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registry {
    /// The toolchain and its tools, for documentation and messages.
    pub toolchain: &'static str,
    /// Exact host names, reached on ports 80 and 443.
    pub hosts: &'static [&'static str],
}

/// What `network = "registries"` allows: the registries the default toolchains download
/// packages from. Mirrors and private registries go in `allow_domains`.
pub const REGISTRIES: &[Registry] = &[
    Registry {
        toolchain: "Python (pip, uv, poetry)",
        hosts: &["pypi.org", "files.pythonhosted.org"],
    },
    Registry {
        toolchain: "JavaScript (npm, yarn, pnpm)",
        hosts: &["registry.npmjs.org", "registry.yarnpkg.com"],
    },
    Registry {
        toolchain: "Rust (cargo)",
        hosts: &["crates.io", "index.crates.io", "static.crates.io"],
    },
    Registry {
        toolchain: "Go (go get, go mod download)",
        hosts: &["proxy.golang.org", "sum.golang.org"],
    },
];

/// The ports an entry without an explicit port allows.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// A destination host as a request names it: a lower-case ASCII name without a trailing dot,
/// or a literal IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// Parses a host (no port): a name of letters, digits, `-` and `_` in dot-separated labels,
    /// an IPv4 address, or an IPv6 address with or without brackets.
    pub fn parse(text: &str) -> Result<Host, HostError> {
        if !text.is_ascii() {
            return Err(HostError::NotAscii);
        }
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        if name.is_empty() {
            return Err(HostError::Empty);
        }
        if name.len() > 253 {
            return Err(HostError::Invalid(format!("{} characters", name.len())));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(HostError::Invalid(format!("label {label:?}")));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(HostError::Invalid(format!("character {c:?}")));
            }
        }
        Ok(Host::Name(name))
    }

    /// Parses `host:port` (`[v6]:port` for IPv6), the target of a `CONNECT`.
    pub fn parse_with_port(text: &str) -> Result<(Host, u16), HostError> {
        let (host, port) = Host::parse_authority(text)?;
        Ok((host, port.ok_or(HostError::NoPort)?))
    }

    /// Parses `host` or `host:port` (the authority of a URL, without credentials).
    pub fn parse_authority(text: &str) -> Result<(Host, Option<u16>), HostError> {
        let (host, port) = split_port(text)?;
        Ok((Host::parse(host)?, port))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
        }
    }
}

/// Why a host or an allow entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the host is empty")]
    Empty,
    #[error("the host is not ASCII; write an internationalised name in its xn-- (punycode) form")]
    NotAscii,
    #[error("the host is not a valid name ({0})")]
    Invalid(String),
    #[error("the port is missing (expected host:port)")]
    NoPort,
    #[error("the port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    #[error("give a host, not a URL: {0:?}")]
    Url(String),
    #[error("a wildcard is only allowed as a leading `*.` or `.`: {0:?}")]
    Wildcard(String),
}

/// Splits an optional `:port` off `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6
/// address (which has no port).
fn split_port(text: &str) -> Result<(&str, Option<u16>), HostError> {
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(HostError::BadPort(p.to_string())),
    };
    if text.starts_with('[') {
        return match text.find(']') {
            Some(end) => {
                let rest = &text[end + 1..];
                let port = match rest.strip_prefix(':') {
                    Some(p) => Some(parse_port(p)?),
                    None if rest.is_empty() => None,
                    None => return Err(HostError::Invalid(format!("after ]: {rest:?}"))),
                };
                Ok((&text[..=end], port))
            }
            None => Err(HostError::Invalid("unclosed [".into())),
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            Ok((host, Some(parse_port(port)?)))
        }
        _ => Ok((text, None)), // a bare IPv6 address
    }
}

/// What an allow entry matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Exactly this host (a name or an IP).
    Exact(Host),
    /// Any subdomain of this name (stored without the leading dot).
    Subdomains(String),
}

/// One parsed `allow_domains` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    pattern: Pattern,
    /// `None`: ports 80 and 443.
    port: Option<u16>,
}

impl AllowEntry {
    /// Parses `host`, `.suffix`, `*.suffix`, an IP, each optionally with `:port`.
    pub fn parse(text: &str) -> Result<AllowEntry, HostError> {
        let text = text.trim();
        if text.contains("://") || text.contains('/') {
            return Err(HostError::Url(text.to_string()));
        }
        let (host, port) = split_port(text)?;
        let suffix = host.strip_prefix("*.").or_else(|| host.strip_prefix('.'));
        if suffix.unwrap_or(host).contains('*') {
            return Err(HostError::Wildcard(text.to_string()));
        }
        let pattern = match suffix {
            Some(suffix) => match Host::parse(suffix)? {
                Host::Name(name) => Pattern::Subdomains(name),
                Host::Ip(_) => return Err(HostError::Wildcard(text.to_string())),
            },
            None => Pattern::Exact(Host::parse(host)?),
        };
        Ok(AllowEntry { pattern, port })
    }

    fn matches_host(&self, host: &Host) -> bool {
        match (&self.pattern, host) {
            (Pattern::Exact(want), host) => want == host,
            (Pattern::Subdomains(suffix), Host::Name(name)) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
            (Pattern::Subdomains(_), Host::Ip(_)) => false,
        }
    }

    fn matches_port(&self, port: u16) -> bool {
        match self.port {
            Some(p) => p == port,
            None => DEFAULT_PORTS.contains(&port),
        }
    }

    fn is_exact(&self) -> bool {
        matches!(self.pattern, Pattern::Exact(_))
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Pattern::Exact(host) => write!(f, "{host}")?,
            Pattern::Subdomains(suffix) => write!(f, ".{suffix}")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// An `allow_domains` entry that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allow_domains entry {entry:?}: {source}; write a host (pypi.org), a subdomain pattern (.example.com), an IP (10.0.0.5), each optionally with :port")]
pub struct AllowEntryError {
    pub entry: String,
    pub source: HostError,
}

/// The egress rules of a run: a mode plus the user's allow entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    mode: NetworkMode,
    allow: Vec<AllowEntry>,
}

/// [`EgressPolicy::decide`]'s answer for a host and port, before any name is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead. `explicit`: an exact entry names this destination, so it may resolve to the
    /// host's own addresses. `why` says which rule allowed it.
    Allowed { explicit: bool, why: String },
    /// Refused, with a reason for the model (what was refused and why).
    Denied { why: String },
}

impl EgressPolicy {
    /// Reads the allow entries; the first bad one is an error.
    pub fn new(
        mode: NetworkMode,
        allow_domains: &[String],
    ) -> Result<EgressPolicy, AllowEntryError> {
        let allow = allow_domains
            .iter()
            .map(|entry| {
                AllowEntry::parse(entry).map_err(|source| AllowEntryError {
                    entry: entry.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EgressPolicy { mode, allow })
    }

    pub fn mode(&self) -> NetworkMode {
        self.mode
    }

    /// Whether `host:port` may be reached (before resolving it).
    pub fn decide(&self, host: &Host, port: u16) -> Decision {
        if self.mode == NetworkMode::Off {
            return Decision::Denied {
                why: "network = \"off\": the agent's commands have no network access".into(),
            };
        }
        let mut wrong_port = false;
        for entry in &self.allow {
            if entry.matches_host(host) {
                if entry.matches_port(port) {
                    return Decision::Allowed {
                        explicit: entry.is_exact(),
                        why: format!("allow_domains: {entry}"),
                    };
                }
                wrong_port = true;
            }
        }
        let default_port = DEFAULT_PORTS.contains(&port);
        if self.mode == NetworkMode::Open {
            return Decision::Allowed {
                explicit: false,
                why: "network = \"open\"".into(),
            };
        }
        if let Host::Name(name) = host {
            if REGISTRIES.iter().any(|r| r.hosts.contains(&name.as_str())) {
                if default_port {
                    return Decision::Allowed {
                        explicit: false,
                        why: "network = \"registries\"".into(),
                    };
                }
                wrong_port = true;
            }
        }
        let why = if wrong_port {
            format!("port {port} of {host} is not allowed (only 80 and 443 unless an allow_domains entry names the port, as {host}:{port})")
        } else {
            format!(
                "{host} is not on the allowlist (network = \"registries\" allows only the package registries: {})",
                registry_hosts().join(", ")
            )
        };
        Decision::Denied { why }
    }

    /// Whether the proxy may connect to `ip`, an address `host` resolved to. `explicit` comes
    /// from [`Decision::Allowed`]. `Err` says why not.
    pub fn address_allowed(ip: IpAddr, explicit: bool) -> Result<(), String> {
        match (explicit, host_own_address(ip)) {
            (false, Some(kind)) => Err(format!("{ip} is a {kind} address")),
            _ => Ok(()),
        }
    }
}

/// Every host of [`REGISTRIES`].
pub fn registry_hosts() -> Vec<&'static str> {
    REGISTRIES
        .iter()
        .flat_map(|r| r.hosts.iter().copied())
        .collect()
}

/// What kind of non-public address `ip` is (`Some("loopback")`...), or `None` for a public one.
/// These are the host's own services, its local network, cloud metadata (169.254.169.254,
/// 100.100.100.200, fd00:ec2::254) and addresses that are not destinations at all.
pub fn host_own_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT, cloud metadata)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if a >= 240 {
        Some("reserved or broadcast")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("reserved (IETF protocol assignments)")
    } else {
        None
    }
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and
    // 6to4 (2002:aabb:ccdd::) addresses lead to an IPv4 address: judge that one.
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if seg[..6] == [0, 0, 0, 0, 0, 0xffff] {
        return v4_kind(embedded_v4(seg[6], seg[7]));
    }
    if seg[..6] == [0; 6] {
        return Some("IPv4-compatible (deprecated)");
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_kind(embedded_v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return v4_kind(embedded_v4(seg[1], seg[2]));
    }
    match seg[0] {
        s if s & 0xfe00 == 0xfc00 => Some("private (unique local)"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        _ => None,
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a broken expectation"
)]
mod tests {
    use super::*;

    fn policy(mode: NetworkMode, allow: &[&str]) -> EgressPolicy {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        EgressPolicy::new(mode, &allow).unwrap()
    }

    fn name(s: &str) -> Host {
        Host::parse(s).unwrap()
    }

    fn allowed(p: &EgressPolicy, host: &str, port: u16) -> Option<bool> {
        match p.decide(&name(host), port) {
            Decision::Allowed { explicit, .. } => Some(explicit),
            Decision::Denied { .. } => None,
        }
    }

    #[test]
    fn hosts_are_normalised_and_validated() {
        assert_eq!(name("PyPI.org."), Host::Name("pypi.org".into()));
        assert_eq!(name("[::1]"), Host::Ip("::1".parse().unwrap()));
        assert_eq!(name("127.0.0.1"), Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(Host::parse("bücher.de"), Err(HostError::NotAscii));
        assert!(Host::parse("").is_err());
        assert!(Host::parse("a..b").is_err());
        assert!(Host::parse("a b").is_err());
        assert!(Host::parse("a/b").is_err());
        assert!(Host::parse("user@evil").is_err());
        assert_eq!(
            Host::parse_with_port("[::1]:8080").unwrap(),
            (Host::Ip("::1".parse().unwrap()), 8080)
        );
        assert_eq!(
            Host::parse_with_port("Example.com:443").unwrap(),
            (Host::Name("example.com".into()), 443)
        );
        assert_eq!(Host::parse_with_port("example.com"), Err(HostError::NoPort));
        assert!(Host::parse_with_port("example.com:0").is_err());
        assert!(Host::parse_with_port("example.com:+80").is_err());
        assert!(Host::parse_with_port("example.com:99999").is_err());
    }

    #[test]
    fn off_refuses_everything_even_allowed_entries() {
        let p = policy(NetworkMode::Off, &["example.com", "127.0.0.1"]);
        assert_eq!(allowed(&p, "example.com", 443), None);
        assert_eq!(allowed(&p, "pypi.org", 443), None);
        assert_eq!(allowed(&p, "127.0.0.1", 80), None);
    }

    #[test]
    fn registries_allow_the_registries_on_default_ports_only() {
        let p = policy(NetworkMode::Registries, &[]);
        for host in registry_hosts() {
            assert_eq!(allowed(&p, host, 443), Some(false), "{host}");
            assert_eq!(allowed(&p, host, 80), Some(false), "{host}");
            assert_eq!(allowed(&p, host, 22), None, "{host}");
        }
        assert_eq!(allowed(&p, "PYPI.ORG.", 443), Some(false));
        assert_eq!(allowed(&p, "evil.pypi.org", 443), None);
        assert_eq!(allowed(&p, "pypi.org.evil.com", 443), None);
        assert_eq!(allowed(&p, "github.com", 443), None);
        let Decision::Denied { why } = p.decide(&name("github.com"), 443) else {
            panic!("allowed")
        };
        assert!(why.contains("github.com is not on the allowlist"), "{why}");
        let Decision::Denied { why } = p.decide(&name("pypi.org"), 8080) else {
            panic!("allowed")
        };
        assert!(why.contains("port 8080"), "{why}");
    }

    #[test]
    fn allow_entries_exact_suffix_and_port() {
        let p = policy(
            NetworkMode::Registries,
            &[
                "Example.COM.",
                "*.corp.test",
                ".other.test:8443",
                "mirror.test:3128",
                "10.1.2.3",
                "[fd00::1]:81",
            ],
        );
        assert_eq!(allowed(&p, "example.com", 443), Some(true));
        assert_eq!(allowed(&p, "www.example.com", 443), None);
        assert_eq!(allowed(&p, "example.com", 8080), None);
        assert_eq!(allowed(&p, "a.corp.test", 443), Some(false));
        assert_eq!(allowed(&p, "a.b.corp.test", 80), Some(false));
        assert_eq!(allowed(&p, "corp.test", 443), None);
        assert_eq!(allowed(&p, "xcorp.test", 443), None);
        assert_eq!(allowed(&p, "a.other.test", 8443), Some(false));
        assert_eq!(allowed(&p, "a.other.test", 443), None);
        assert_eq!(allowed(&p, "mirror.test", 3128), Some(true));
        assert_eq!(allowed(&p, "mirror.test", 443), None);
        assert_eq!(allowed(&p, "10.1.2.3", 80), Some(true));
        assert_eq!(allowed(&p, "[fd00::1]", 81), Some(true));
        assert_eq!(allowed(&p, "fd00::1", 443), None);
    }

    #[test]
    fn open_allows_any_public_destination_and_any_port() {
        let p = policy(NetworkMode::Open, &["localhost"]);
        assert_eq!(allowed(&p, "example.com", 22), Some(false));
        assert_eq!(allowed(&p, "localhost", 443), Some(true));
        assert_eq!(allowed(&p, "localhost", 5432), Some(false));
    }

    #[test]
    fn bad_entries_are_errors_naming_the_entry() {
        for bad in [
            "https://pypi.org",
            "pypi.org/simple",
            "*",
            "a.*.com",
            "*.10.0.0.1",
            "bücher.de",
            "x:0",
            "x:y",
            "",
            "[::1",
        ] {
            let err = EgressPolicy::new(NetworkMode::Registries, &[bad.to_string()]).unwrap_err();
            assert_eq!(err.entry, bad);
            assert!(err.to_string().contains("allow_domains entry"), "{err}");
        }
    }

    #[test]
    fn the_hosts_own_addresses_are_refused_unless_explicit() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "ff02::1",
            "192.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(EgressPolicy::address_allowed(ip, false).is_err(), "{ip}");
            assert!(EgressPolicy::address_allowed(ip, true).is_ok(), "{ip}");
        }
        for ip in [
            "151.101.0.223",
            "8.8.8.8",
            "2a04:4e42::223",
            "::ffff:8.8.8.8",
            "100.128.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(EgressPolicy::address_allowed(ip, false).is_ok(), "{ip}");
        }
    }

    #[test]
    fn the_readme_lists_every_registry() {
        let readme = include_str!("../../../README.md");
        for registry in REGISTRIES {
            let hosts: Vec<String> = registry.hosts.iter().map(|h| format!("`{h}`")).collect();
            assert!(
                readme
                    .lines()
                    .any(|l| l.starts_with('|') && l.contains(&hosts.join(", "))),
                "README's Network table lacks {hosts:?}"
            );
        }
    }

    #[test]
    fn modes_parse_from_config_text() {
        assert_eq!(
            "Registries".parse::<NetworkMode>(),
            Ok(NetworkMode::Registries)
        );
        assert_eq!("off".parse::<NetworkMode>(), Ok(NetworkMode::Off));
        assert!("on".parse::<NetworkMode>().is_err());
        assert_eq!(NetworkMode::Open.to_string(), "open");
    }
}
