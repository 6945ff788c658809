//! `moto_server` (a local AWS) for the tests of ec2-iid-aws and ec2-iid-cli: start, pause, stop.
//!
//! The binary comes from `MOTO_SERVER`, else `<repo>/target/moto-venv/bin/moto_server` (made by
//! `ec2-iid-aws/ci.sh`), else `PATH`. Without it a test prints a notice and passes, unless
//! `CI=true`: then it fails.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// moto's default account, the one of any dummy credentials.
pub const OWN_ACCOUNT: &str = "123456789012";

/// A running `moto_server`, stopped on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Moto {
    /// Starts moto, or returns `None` (after a notice) when it cannot run here. Fails the test
    /// instead when `CI=true`.
    pub fn start() -> Option<Self> {
        Self::start_as(Launch::Plain)
    }

    /// Like [`start`](Self::start), with DynamoDB's `PutItem` (and `UpdateItem`, `DeleteItem`)
    /// made atomic, as they are on AWS.
    ///
    /// moto checks a write's condition and stores the item in separate steps, and serves each
    /// request in a thread of its own: two concurrent conditional puts can both pass the check
    /// (2 of 100 rounds of 64 concurrent claims had two winners). This runs moto's own
    /// `moto_server` entry point with `put_item` behind one lock, so that tests of concurrent
    /// claims test the registry, not moto's race.
    pub fn start_with_atomic_put_item() -> Option<Self> {
        Self::start_as(Launch::AtomicPutItem)
    }

    /// Like [`start`](Self::start), with moto logging each request it serves to `log`, one
    /// line each: the monotonic time it came in (seconds), its `Action` and the number of
    /// values of its first filter (`Filter.1.Value.N`), e.g. `1234.567890 DescribeInstances 200`.
    /// moto's own recorder (`MOTO_ENABLE_RECORDING`) keeps no times.
    pub fn start_with_request_log(log: &Path) -> Option<Self> {
        Self::start_as(Launch::RequestLog(log))
    }

    fn start_as(launch: Launch<'_>) -> Option<Self> {
        // A free port can be taken between the probe and moto's bind: try a few.
        let started = Self::try_start(launch)
            .or_else(|_| Self::try_start(launch))
            .or_else(|_| Self::try_start(launch));
        match started {
            Ok(moto) => Some(moto),
            Err(why) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("moto_server is required in CI (CI=true): {why}")
            }
            Err(why) => {
                eprintln!(
                    "NOTICE: skipping a moto test: {why}. Run `bash ec2-iid-aws/ci.sh --setup-only` \
                     or set MOTO_SERVER to a moto_server binary."
                );
                None
            }
        }
    }

    fn try_start(launch: Launch<'_>) -> Result<Self, String> {
        let binary = moto_binary().ok_or("moto_server not found")?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut command = match launch {
            Launch::Plain => Command::new(&binary),
            Launch::AtomicPutItem => {
                let mut command = Command::new(interpreter(&binary)?);
                command.args(["-c", ATOMIC_PUT_ITEM]);
                command
            }
            Launch::RequestLog(log) => {
                let mut command = Command::new(interpreter(&binary)?);
                command
                    .args(["-c", REQUEST_LOG])
                    .env("MOTO_REQUEST_LOG", log);
                command
            }
        };
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let mut moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!("{} exited: {status}", binary.display()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // Something answers; make sure it is this moto and not another process that
                // took the port between the probe and moto's bind (this moto then exits).
                std::thread::sleep(Duration::from_millis(200));
                if let Ok(Some(status)) = moto.child.try_wait() {
                    return Err(format!(
                        "{} exited: {status} (port {port} taken?)",
                        binary.display()
                    ));
                }
                return Ok(moto);
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not answer within 60 s", binary.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Moto {
    /// Freezes moto (`SIGSTOP`): it keeps its state and its port, connections are accepted
    /// by the kernel but nothing answers, as for a hung service, until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d moto run again (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "kill {signal} of moto_server failed"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How [`Moto`] runs `moto_server`.
#[derive(Clone, Copy, Debug)]
enum Launch<'a> {
    /// As installed.
    Plain,
    /// Through its Python interpreter, with DynamoDB's `put_item` behind a lock.
    AtomicPutItem,
    /// Through its Python interpreter, logging each request to this file.
    RequestLog(&'a Path),
}

/// `moto_server`'s `main`, its WSGI application wrapped to append a line per request to the file
/// `MOTO_REQUEST_LOG` names (see [`Moto::start_with_request_log`]); the body it reads is put
/// back for moto, as moto's own recorder does.
const REQUEST_LOG: &str = "\
import io, os, sys, threading, time, urllib.parse
import moto.server
log = open(os.environ['MOTO_REQUEST_LOG'], 'a', buffering=1)
lock = threading.Lock()
run_simple = moto.server.run_simple
def logged(app):
    def handle(environ, start_response):
        came = time.monotonic()
        length = int(environ.get('CONTENT_LENGTH') or 0)
        body = environ['wsgi.input'].read(length) if length else b''
        environ['wsgi.input'] = io.BytesIO(body)
        form = urllib.parse.parse_qs(body.decode('utf-8', 'replace'))
        action = form.get('Action', ['-'])[0]
        values = sum(1 for key in form if key.startswith('Filter.1.Value.'))
        with lock:
            log.write(f'{came:.6f} {action} {values}\\n')
        return app(environ, start_response)
    return handle
def run_logged(host, port, app, **kwargs):
    return run_simple(host, port, logged(app), **kwargs)
moto.server.run_simple = run_logged
moto.server.main(sys.argv[1:])
";

/// `moto_server`'s `main`, with DynamoDB's `Table.put_item` (condition check, then store) and
/// its backend's `update_item` and `delete_item` (the same, for enrollment records) behind one
/// re-entrant lock (`update_item` of a new item calls `put_item`); `python -c` passes the
/// remaining arguments on in `sys.argv[1:]`.
const ATOMIC_PUT_ITEM: &str = "\
import sys, threading
import moto.server
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
lock = threading.RLock()
def atomic(method):
    def locked(self, *args, **kwargs):
        with lock:
            return method(self, *args, **kwargs)
    return locked
Table.put_item = atomic(Table.put_item)
DynamoDBBackend.update_item = atomic(DynamoDBBackend.update_item)
DynamoDBBackend.delete_item = atomic(DynamoDBBackend.delete_item)
moto.server.main(sys.argv[1:])
";

/// The Python of a `moto_server` entry-point script: the virtualenv's `python` beside it, else
/// the interpreter its `#!` line names.
fn interpreter(script: &Path) -> Result<PathBuf, String> {
    if let Some(python) = script.parent().map(|bin| bin.join("python"))
        && python.is_file()
    {
        return Ok(python);
    }
    let text =
        std::fs::read(script).map_err(|e| format!("cannot read {}: {e}", script.display()))?;
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(first)
        .strip_prefix("#!")
        .and_then(|line| line.split_whitespace().next())
        .filter(|python| !python.ends_with("/env") && !python.ends_with("/sh"))
        .map(PathBuf::from)
        .ok_or_else(|| format!("no Python found for {}", script.display()))
}

fn moto_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/moto-venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|path| path.is_file())
}
