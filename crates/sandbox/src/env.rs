//! The environment commands get: an allowlist of the harness's variables with secrets removed,
//! plus what the sandbox sets (temp dir, tool caches, git's no-daemon settings, the proxy).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Variables passed to commands when the parent has them.
const ENV_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "USER",
    "LOGNAME",
    "SHELL",
    "TZ",
    "RUSTUP_HOME",
    "CARGO_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "GOFLAGS",
    "GOTOOLCHAIN",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "NODE_PATH",
    "NVM_DIR",
    "NODE_ENV",
    "CI",
    "NO_COLOR",
    "FORCE_COLOR",
    "CC",
    "CXX",
    "JAVA_HOME",
    "COLUMNS",
    "LINES",
];

/// Locale variables, passed only with a plain locale name as value (`C.UTF-8`, `en_US.utf8`,
/// `de_DE@euro`): a path there would make programs load locale data of the agent's choosing.
const LOCALE_VARS: &[&str] = &["LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE"];

/// Whether a variable name looks like it holds a secret; such variables never reach commands.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["_KEY", "_TOKEN", "_SECRET", "_PASSWORD"]
        .iter()
        .any(|s| upper.ends_with(s))
        || upper.contains("API_KEY")
        || upper.contains("SECRET")
        || upper.contains("PASSWORD")
        || upper.contains("CREDENTIAL")
}

fn harmless_locale(value: &OsString) -> bool {
    value.to_str().is_some_and(|v| {
        !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.@-:".contains(&b))
    })
}

/// The allowlisted part of `parent` (plus the variables the user added), secrets removed.
/// `PYTHON*` (`PYTHONSTARTUP`, `PYTHONPATH` run or import code of the harness
/// environment's choosing) and `LC_*` other than plain locale names do not pass.
pub(crate) fn allowed(
    parent: impl Iterator<Item = (OsString, OsString)>,
    extra: &[String],
) -> Vec<(OsString, OsString)> {
    parent
        .filter(|(k, v)| {
            let Some(name) = k.to_str() else { return false };
            let listed = ENV_ALLOW.contains(&name) || extra.iter().any(|e| e == name);
            let locale_ok = !LOCALE_VARS.contains(&name) || harmless_locale(v);
            listed && locale_ok && !is_secret_name(name)
        })
        .collect()
}

fn set(env: &mut Vec<(OsString, OsString)>, key: &str, value: impl Into<OsString>) {
    env.retain(|(name, _)| name != key);
    env.push((OsString::from(key), value.into()));
}

fn get<'a>(env: &'a [(OsString, OsString)], key: &str) -> Option<&'a OsString> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// What both modes set: the temp dir, tool caches inside it, git without daemons.
fn common(env: &mut Vec<(OsString, OsString)>, tmp: &Path) {
    for k in ["TMPDIR", "TMP", "TEMP"] {
        set(env, k, tmp.as_os_str());
    }
    // git must not daemonize its automatic gc/maintenance (in fallback mode setsid is refused;
    // in a world a detached gc would be killed mid-way at the session's end).
    for (k, v) in [
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "gc.autoDetach"),
        ("GIT_CONFIG_VALUE_0", "false"),
        ("GIT_CONFIG_KEY_1", "maintenance.autoDetach"),
        ("GIT_CONFIG_VALUE_1", "false"),
    ] {
        set(env, k, v);
    }
    // Tool caches that must be writable go to the private temp dir.
    for (k, dir) in [
        ("GOCACHE", "go-build"),
        ("npm_config_cache", "npm-cache"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        set(env, k, tmp.join(dir).into_os_string());
    }
}

/// Fallback mode: the private temp dir by its host path. No proxy variables: the egress proxy
/// only listens inside a world's network namespace.
pub(crate) fn for_fallback(
    mut env: Vec<(OsString, OsString)>,
    tmp: &Path,
) -> Vec<(OsString, OsString)> {
    common(&mut env, tmp);
    env
}

/// In a world: `/tmp` is the private temp dir, `$HOME` the view's empty home, and cargo gets a
/// writable `CARGO_HOME` of its own (so it never reads `~/.cargo/credentials.toml`) while
/// `PATH` keeps `~/.cargo/bin` and `RUSTUP_HOME` the read-only `~/.rustup`.
pub(crate) fn for_world(
    mut env: Vec<(OsString, OsString)>,
    home: Option<&Path>,
    proxy_port: Option<u16>,
) -> Vec<(OsString, OsString)> {
    let tmp = Path::new("/tmp");
    common(&mut env, tmp);
    if let Some(home) = home {
        set(&mut env, "HOME", home.as_os_str());
        let rustup = home.join(".rustup");
        if get(&env, "RUSTUP_HOME").is_none() && rustup.is_dir() {
            set(&mut env, "RUSTUP_HOME", rustup.into_os_string());
        }
    }
    set(
        &mut env,
        "CARGO_HOME",
        PathBuf::from("/tmp/cargo-home").into_os_string(),
    );
    proxy(&mut env, proxy_port);
    env
}

/// The proxy variables ([`crate::proxy::proxy_env`]), when a proxy listens inside the world.
fn proxy(env: &mut Vec<(OsString, OsString)>, port: Option<u16>) {
    let Some(port) = port else { return };
    for (k, v) in crate::proxy::proxy_env(port) {
        set(env, &k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(env: &[(OsString, OsString)]) -> Vec<String> {
        env.iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn secrets_are_scrubbed_even_when_allowed() {
        let parent = vec![
            (OsString::from("PATH"), OsString::from("/usr/bin")),
            (OsString::from("ANTHROPIC_API_KEY"), OsString::from("sk")),
            (OsString::from("GITHUB_TOKEN"), OsString::from("t")),
            (OsString::from("MY_SECRET"), OsString::from("s")),
            (OsString::from("RANDOM_VAR"), OsString::from("r")),
            (OsString::from("DB_PASSWORD"), OsString::from("p")),
        ];
        let extra = vec![
            "GITHUB_TOKEN".to_string(),
            "MY_SECRET".to_string(),
            "DB_PASSWORD".to_string(),
        ];
        let env = for_fallback(allowed(parent.into_iter(), &extra), Path::new("/tmp/x"));
        let names = names(&env);
        assert!(names.contains(&"PATH".to_string()));
        for bad in [
            "ANTHROPIC_API_KEY",
            "GITHUB_TOKEN",
            "MY_SECRET",
            "RANDOM_VAR",
            "DB_PASSWORD",
        ] {
            assert!(!names.contains(&bad.to_string()), "{bad} leaked");
        }
        assert!(env.iter().any(|(k, v)| k == "TMPDIR" && v == "/tmp/x"));
    }

    #[test]
    fn python_and_odd_locale_variables_do_not_pass() {
        let parent = vec![
            (
                OsString::from("PYTHONSTARTUP"),
                OsString::from("/x/evil.py"),
            ),
            (OsString::from("PYTHONPATH"), OsString::from("/x")),
            (OsString::from("LC_ALL"), OsString::from("C.UTF-8")),
            (OsString::from("LC_CTYPE"), OsString::from("/x/locale")),
            (OsString::from("LC_MESSAGES"), OsString::from("C")),
            (OsString::from("LANG"), OsString::from("en_US.UTF-8")),
        ];
        let env = allowed(parent.into_iter(), &[]);
        assert_eq!(names(&env), vec!["LC_ALL", "LANG"]);
    }

    #[test]
    fn a_world_gets_its_own_tmp_cargo_home_and_proxy() {
        let parent = vec![(OsString::from("CARGO_HOME"), OsString::from("/h/.cargo"))];
        let env = for_world(
            allowed(parent.into_iter(), &[]),
            Some(Path::new("/h")),
            Some(3128),
        );
        let value = |k: &str| get(&env, k).map(|v| v.to_string_lossy().into_owned());
        assert_eq!(value("TMPDIR").as_deref(), Some("/tmp"));
        assert_eq!(value("CARGO_HOME").as_deref(), Some("/tmp/cargo-home"));
        assert_eq!(value("HOME").as_deref(), Some("/h"));
        assert_eq!(
            value("HTTPS_PROXY").as_deref(),
            Some("http://127.0.0.1:3128")
        );
        assert_eq!(
            value("no_proxy").as_deref(),
            Some("localhost,127.0.0.1,::1")
        );
    }
}
