//! A throwaway PostgreSQL server for tests and benches: `initdb` into a temporary directory,
//! `postgres` listening only on a Unix socket in that directory, a superuser with a password
//! (SCRAM), stopped (fast shutdown) and deleted on drop.
//!
//! PostgreSQL refuses to run as root; when the tests run as root, `initdb` and `postgres` run as
//! `nobody` (uid 65534, through `setpriv`), with the directory handed to that user.
//!
//! The binaries are looked for in `$PG_BIN`, then the newest `/usr/lib/postgresql/*/bin`
//! (Debian's `postgresql` package), then `pg_config --bindir`. When none is found the server
//! is [`PostgresError::NotInstalled`]: tests skip with a message
//! ([`TempPostgres::start_or_skip`]) unless `LOOPWRIGHT_REQUIRE_POSTGRES=1` (CI sets it after
//! installing the package), which makes a missing PostgreSQL a failure.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser of the throwaway server.
pub const PG_USER: &str = "loopwright";

/// Why no server could be started.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("PostgreSQL is not installed ({0}); install Debian's `postgresql` package (apt-get install -y postgresql) or set PG_BIN to the directory holding initdb and postgres")]
    NotInstalled(String),
    #[error("the throwaway PostgreSQL server could not be started: {0}")]
    Failed(String),
}

/// A running throwaway server. Dropping it stops the server and deletes its directory.
pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    password: String,
}

impl std::fmt::Debug for TempPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempPostgres")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The directory of `initdb`, `postgres`, `pg_isready`, `createdb` and `psql`.
fn find_bin() -> Result<PathBuf, PostgresError> {
    let has_all = |dir: &Path| {
        ["initdb", "postgres", "pg_isready"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        return if has_all(&dir) {
            Ok(dir)
        } else {
            Err(PostgresError::NotInstalled(format!(
                "PG_BIN={} has no initdb, postgres and pg_isready",
                dir.display()
            )))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_all(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_all(&dir) {
            return Ok(dir);
        }
    }
    Err(PostgresError::NotInstalled(
        "no initdb and postgres in /usr/lib/postgresql/*/bin or from pg_config".into(),
    ))
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `nobody`: who runs the server when the tests run as root.
const NOBODY: u32 = 65534;

impl TempPostgres {
    /// Starts a server with settings for tests (no fsync: nothing here must survive a crash of
    /// the machine).
    pub fn start() -> Result<TempPostgres, PostgresError> {
        TempPostgres::start_with(&[
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
        ])
    }

    /// Starts a server with these `-c NAME=VALUE` settings on top of the defaults (a bench
    /// that measures commits passes none, so commits are fsynced as in production).
    pub fn start_with(settings: &[(&str, &str)]) -> Result<TempPostgres, PostgresError> {
        let bin = find_bin()?;
        let failed =
            |what: &str, e: &dyn std::fmt::Display| PostgresError::Failed(format!("{what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("loopwright-pg-")
            .tempdir()
            .map_err(|e| failed("cannot create its directory", &e))?;
        let as_nobody = running_as_root();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let password = format!("pw{}x{nanos}", std::process::id());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n"))
            .map_err(|e| failed("cannot write the password file", &e))?;
        if as_nobody {
            for path in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
                    .map_err(|e| failed("cannot hand its directory to nobody", &e))?;
            }
        }
        let run_as = |program: &str| {
            let mut cmd = if as_nobody {
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={NOBODY}"),
                    format!("--regid={NOBODY}"),
                    "--clear-groups".to_string(),
                    "--".to_string(),
                ])
                .arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            cmd.current_dir(dir.path())
                .env("LC_ALL", "C")
                .env_remove("PGDATA");
            cmd
        };
        let data = dir.path().join("data");
        let out = run_as("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                PG_USER,
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .map_err(|e| failed("cannot run initdb (is setpriv installed?)", &e))?;
        if !out.status.success() {
            return Err(PostgresError::Failed(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        let port = 5432;
        let log = std::fs::File::create(dir.path().join("server.log"))
            .map_err(|e| failed("cannot create its log", &e))?;
        if as_nobody {
            let _ =
                std::os::unix::fs::chown(dir.path().join("server.log"), Some(NOBODY), Some(NOBODY));
        }
        let log_err = log
            .try_clone()
            .map_err(|e| failed("cannot open its log", &e))?;
        let mut server = run_as("postgres");
        server.arg("-D").arg(&data).arg("-k").arg(dir.path()).args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=",
            "-c",
            "shared_buffers=16MB",
        ]);
        for (name, value) in settings {
            server.arg("-c").arg(format!("{name}={value}"));
        }
        let child = server
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| failed("cannot start postgres", &e))?;
        let mut pg = TempPostgres {
            dir,
            bin,
            child: Some(child),
            port,
            password,
        };
        pg.wait_ready()?;
        Ok(pg)
    }

    /// [`TempPostgres::start`], or `None` with a message on stderr when PostgreSQL is not
    /// installed (unless `LOOPWRIGHT_REQUIRE_POSTGRES=1`). Any other failure panics.
    pub fn start_or_skip(test: &str) -> Option<TempPostgres> {
        match TempPostgres::start() {
            Ok(pg) => Some(pg),
            Err(PostgresError::NotInstalled(why))
                if std::env::var("LOOPWRIGHT_REQUIRE_POSTGRES").as_deref() != Ok("1") =>
            {
                eprintln!("skipping {test}: PostgreSQL is not installed ({why}); `apt-get install -y postgresql` to run it");
                None
            }
            Err(e) => panic!("{test}: {e}"),
        }
    }

    fn wait_ready(&mut self) -> Result<(), PostgresError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(PostgresError::Failed(format!(
                        "postgres exited ({status}): {}",
                        self.log_tail()
                    )));
                }
            }
            let ready = self
                .client("pg_isready")
                .args(["-d", "postgres"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PostgresError::Failed(format!(
                    "postgres did not accept connections within 60 s: {}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The end of the server's log, for messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A client program (`psql`, `createdb`, `pg_isready`) pointed at the server.
    fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", PG_USER])
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE")
            .env_remove("PGDATABASE");
        cmd
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://loopwright:PASSWORD@/DB?host=SOCKET_DIR&port=PORT`.
    pub fn url(&self, db: &str) -> String {
        self.url_with_password(db, &self.password)
    }

    /// [`TempPostgres::url`] with another password (to test a refused login).
    pub fn url_with_password(&self, db: &str, password: &str) -> String {
        format!(
            "postgres://{PG_USER}:{password}@/{db}?host={}&port={}",
            self.dir.path().display(),
            self.port
        )
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) -> Result<(), PostgresError> {
        let out = self
            .client("createdb")
            .arg(name)
            .output()
            .map_err(|e| PostgresError::Failed(format!("cannot run createdb: {e}")))?;
        if !out.status.success() {
            return Err(PostgresError::Failed(format!(
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Runs SQL with `psql` in database `db` and returns its unaligned output (`-At`).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, PostgresError> {
        let out = self
            .client("psql")
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .map_err(|e| PostgresError::Failed(format!("cannot run psql: {e}")))?;
        if !out.status.success() {
            return Err(PostgresError::Failed(format!(
                "psql: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGINT: fast shutdown (disconnect clients, no waiting for them).
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
