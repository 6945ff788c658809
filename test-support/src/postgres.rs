//! A throwaway PostgreSQL server for the tests of ec2-iid-postgres and ec2-iid-cli, one per test
//! binary (and others a test starts for itself).
//!
//! The server binaries come from `PG_BIN` (a directory), else `pg_config --bindir`, else the
//! newest `/usr/lib/postgresql/*/bin`, else `PATH`. The cluster is made with `initdb` in a new
//! temporary directory (trust authentication, `fsync=off`) and listens on a free port of
//! 127.0.0.1 only. PostgreSQL refuses to run as root, so as root the server binaries run as the
//! user `PG_USER` (default `postgres`, which Debian's package creates) through `runuser`.
//!
//! Statics are never dropped, so a watchdog shell started with the server stops it and removes
//! the directory once the test process has exited (however it exited).
//!
//! Without PostgreSQL a test prints a notice and passes, unless `CI=true`: then it fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, Pool};
use ec2_iid_postgres::PostgresJoinRegistry;
use tokio_postgres::NoTls;

/// Stops the server once the test process (the shell's parent) is gone, then removes the
/// directory. Arguments: the directory, then the stop command.
const WATCHDOG: &str = r#"dir="$1"; shift
while kill -0 "$PPID" 2>/dev/null; do sleep 0.5; done
"$@" >/dev/null 2>&1
rm -rf "$dir""#;

/// A running throwaway cluster.
#[derive(Debug)]
pub struct PgServer {
    /// The temporary directory: `data/` (the cluster), `log`, and the Unix socket.
    dir: PathBuf,
    /// The directory of `initdb` and `pg_ctl`.
    bin: PathBuf,
    /// The user the server runs as when the tests run as root.
    run_as: Option<String>,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// `ssl=on` with this server certificate and key (PEM), and TCP connections without TLS
    /// refused; see [`own_tls_server`].
    tls: Option<ServerTls>,
    watchdog: Option<Child>,
}

/// A server certificate (chain) and its private key, PEM.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The certificate chain, leaf first.
    pub cert_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();

/// The test binary's server, started on first use; `None` (after a notice) when PostgreSQL
/// cannot run here. Fails the test instead when `CI=true`.
pub fn server() -> Option<&'static PgServer> {
    available(SERVER.get_or_init(PgServer::start).as_ref())
}

/// A server of the caller's own, stopped and removed on drop: for a test that stops and
/// restarts it ([`PgServer::stop`], [`PgServer::restart`]) while other tests use [`server`].
/// `None` (after a notice) when PostgreSQL cannot run here; fails the test when `CI=true`.
pub fn own_server() -> Option<PgServer> {
    let started = PgServer::start();
    available(started.as_ref())?;
    started.ok()
}

/// A server of the caller's own with `ssl=on` and `tls`'s certificate: its `pg_hba.conf`
/// accepts TCP connections with TLS only (`hostssl`, trust), so plain ones are refused. A
/// cluster of its own, so the other tests' server starts as fast as before.
pub fn own_tls_server(tls: ServerTls) -> Option<PgServer> {
    let started = PgServer::start_with(Some(tls));
    available(started.as_ref())?;
    started.ok()
}

/// The server, or `None` after a notice; fails the test instead when `CI=true`.
fn available<S>(started: Result<S, &String>) -> Option<S> {
    match started {
        Ok(server) => Some(server),
        Err(why) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("a PostgreSQL server is required in CI (CI=true): {why}")
        }
        Err(why) => {
            // Written to the process's stderr, past the test harness's output capture, so
            // that a skip is seen even when the test passes.
            let _ = writeln!(
                std::io::stderr(),
                "skipping: no PostgreSQL server (set PG_BIN to the directory of initdb and \
                 pg_ctl, or install Debian's postgresql): {why}"
            );
            None
        }
    }
}

impl PgServer {
    fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    fn start_with(tls: Option<ServerTls>) -> Result<Self, String> {
        let bin = find_bin_dir().ok_or("initdb and pg_ctl not found")?;
        let run_as = if is_root() {
            let user = std::env::var("PG_USER").unwrap_or_else(|_| "postgres".to_owned());
            if !Command::new("id")
                .arg(&user)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return Err(format!(
                    "running as root and there is no user {user:?} to run PostgreSQL as \
                     (set PG_USER)"
                ));
            }
            Some(user)
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!(
            "ec2-iid-postgres-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut server = Self {
            dir,
            bin,
            run_as,
            port: 0,
            tls,
            watchdog: None,
        };
        // On error `server` is dropped here, which removes the directory.
        server.init_and_start()?;
        Ok(server)
    }

    fn init_and_start(&mut self) -> Result<(), String> {
        if let Some(user) = &self.run_as {
            run(Command::new("chown").arg(user).arg(&self.dir))?;
        }
        let data = self.dir.join("data");
        run(self.command("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ]))?;
        if let Some(tls) = &self.tls {
            self.write_tls_files(&data, tls)?;
        }
        // The port is free when probed, but another process may bind it before the server.
        let mut last = String::new();
        for _ in 0..3 {
            let port = crate::free_port().map_err(|e| format!("no free port: {e}"))?;
            match self.start_on(port) {
                Ok(()) => {
                    self.port = port;
                    self.watchdog = Some(self.spawn_watchdog()?);
                    return Ok(());
                }
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    /// `server.crt` and `server.key` (mode 0600, owned by the server's user, as PostgreSQL
    /// requires) in the data directory, and a `pg_hba.conf` that takes TCP with TLS only.
    fn write_tls_files(&self, data: &Path, tls: &ServerTls) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt as _;
        let hba = "local all all trust\n\
                   hostssl all all 127.0.0.1/32 trust\n\
                   hostssl all all ::1/128 trust\n";
        for (name, text) in [
            ("server.crt", tls.cert_pem.as_str()),
            ("server.key", tls.key_pem.as_str()),
            ("pg_hba.conf", hba),
        ] {
            let path = data.join(name);
            let write = || -> std::io::Result<()> {
                std::fs::write(&path, text)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            };
            write().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            if let Some(user) = &self.run_as {
                run(Command::new("chown").arg(user).arg(&path))?;
            }
        }
        Ok(())
    }

    /// `pg_ctl start` of the cluster on 127.0.0.1:`port`; the error has the server's log.
    fn start_on(&self, port: u16) -> Result<(), String> {
        let ssl = if self.tls.is_some() { " -c ssl=on" } else { "" };
        let options = format!(
            "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300{ssl}",
            self.dir.display()
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]))
        .map_err(|why| {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            format!("{why}; server log:\n{log}")
        })
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are closed); its data stays.
    pub fn stop(&self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run(&mut stop).expect("pg_ctl stop");
    }

    /// Starts the stopped server again on the same port, with the same data.
    pub fn restart(&self) {
        self.start_on(self.port)
            .expect("pg_ctl start on the same port");
    }

    /// `bin/<program>`, through `runuser` as root, run in the temporary directory.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        command.current_dir(&self.dir).stdin(Stdio::null());
        command
    }

    fn stop_command(&self) -> Command {
        let mut command = self.command("pg_ctl");
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        command
    }

    fn spawn_watchdog(&self) -> Result<Child, String> {
        let stop = self.stop_command();
        Command::new("sh")
            .args(["-c", WATCHDOG, "sh"])
            .arg(&self.dir)
            .arg(stop.get_program())
            .args(stop.get_args())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog shell: {e}"))
    }

    /// Connection settings for the superuser `postgres` over TCP.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres");
        config
    }

    /// A pool of its own (as a separate replica would have) of at most `max_size` connections.
    pub fn pool(&self, max_size: usize) -> Pool {
        Pool::builder(Manager::new(self.config(), NoTls))
            .max_size(max_size)
            .build()
            .expect("a pool without timeouts needs no runtime")
    }

    /// A registry on a pool of its own in `table`, migrated.
    pub async fn registry(&self, table: &str, max_size: usize) -> PostgresJoinRegistry {
        let registry = PostgresJoinRegistry::new(self.pool(max_size))
            .with_table(table)
            .expect("valid table name");
        registry.migrate().await.expect("migrate");
        registry
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self
                .stop_command()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// Runs `command` to completion; its output is in the error.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} {:?} failed ({}): {}{}",
            command.get_program(),
            command.get_args().collect::<Vec<_>>(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// `PG_BIN`, else `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`, else the
/// first `PATH` entry with both `initdb` and `pg_ctl`.
fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        // An explicit setting is used or refused, never silently replaced.
        let dir = PathBuf::from(dir);
        return has_server_binaries(&dir).then_some(dir);
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    debian.sort();
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    from_pg_config
        .into_iter()
        .chain(debian.into_iter().rev().map(|(_, dir)| dir))
        .chain(on_path)
        .find(|dir| has_server_binaries(dir))
}
