//! Harness for black-box integration tests: real `gridledger-node` processes on free
//! ports, real TLS, real RocksDB, driven through the `gridledger` CLI, the gRPC API
//! and the independent Python verifier, as a user would.
//!
//! # Layout
//! - [`bin`]: paths of the workspace binaries (built by `cargo build --workspace --bins`
//!   before the tests; scripts/test.sh does that).
//! - [`DevNode`]: a `gridledger-node dev` process in a temporary directory.
//! - [`python_verify`]: runs tests/verifier/gridledger_verify.py.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use tonic::transport::Channel;

/// Path of a workspace binary next to the test executable's target directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A dev node process.
pub struct DevNode {
    /// Its directory (kept across restarts).
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    /// Demo size used.
    pub meters: usize,
}

impl DevNode {
    /// Starts a dev node with a small demo consortium in a new temporary directory.
    pub fn start(meters: usize) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("gl-it-")
            .tempdir()
            .expect("tempdir");
        let mut n = DevNode {
            dir: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
            child: None,
            meters,
        };
        n.spawn();
        n
    }

    // Launches `gridledger-node dev` on this directory, logging to DIR/node.log.
    fn launch(&self) -> Child {
        let _ = std::fs::remove_file(self.dir.join("endpoints.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .expect("log file");
        Command::new(bin("gridledger-node"))
            .args(["dev", "--data-dir"])
            .arg(&self.dir)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--meters",
                &self.meters.to_string(),
                "--days",
                "1",
            ])
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn gridledger-node")
    }

    /// (Re)starts the process on the same directory and waits until it serves.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.child = Some(self.launch());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.dir.join("endpoints.json").exists() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "node exited with {status} during start-up; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "node did not start within 60 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the process and returns its exit status if it stops within `wait`
    /// (for start-up refusal tests).
    pub fn spawn_expect_exit(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.launch();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
        None
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Path of the CLI profile.
    pub fn profile(&self) -> PathBuf {
        self.dir.join("profile.toml")
    }

    /// Path of the trust policy.
    pub fn trust(&self) -> PathBuf {
        self.dir.join("trust.json")
    }

    /// Runs the `gridledger` CLI with this node's profile.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin("gridledger"))
            .args(args)
            .env("GRIDLEDGER_PROFILE", self.profile())
            .stdin(Stdio::null())
            .output()
            .expect("run gridledger")
    }

    /// A gRPC client with the profile's client certificate.
    pub async fn client(&self) -> ChainServiceClient<Channel> {
        let p = gridledger_client::profile::Profile::load(&self.profile()).expect("profile");
        gridledger_client::grpc::connect(&p).await.expect("connect")
    }

    /// The CLI's signing key (an operator of grid-north).
    pub fn signing_key(&self) -> ed25519_dalek_key::SigningKey {
        gridledger_client::profile::Profile::load(&self.profile())
            .expect("profile")
            .signing_key()
            .expect("key")
    }
}

/// Re-export so tests name the key type without another dependency line.
pub mod ed25519_dalek_key {
    pub use ed25519_dalek::SigningKey;
}

impl Drop for DevNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the independent Python verifier with arguments; returns its output.
pub fn python_verify(args: &[&std::ffi::OsStr]) -> Output {
    Command::new("python3")
        .arg(repo().join("tests/verifier/gridledger_verify.py"))
        .args(args)
        .output()
        .expect("python3")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
