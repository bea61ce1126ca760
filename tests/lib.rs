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
    // Read at run time, not compile time: CI clones share the target directory, and a
    // path baked in by another checkout would point at that checkout.
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
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
                "--public-listen",
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

    /// The process id of the running node.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node running").id()
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

/// A demo account from DIR/demo-accounts.json.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Account {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Org.
    pub org: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Bound meters.
    pub meters: Vec<String>,
}

/// Which listener to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The API port, with the dev client certificate (an org system of grid-north).
    ApiWithCert,
    /// The public listener, no client certificate.
    Public,
}

impl DevNode {
    /// DIR/endpoints.json.
    pub fn endpoints(&self) -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.dir.join("endpoints.json")).expect("endpoints.json"),
        )
        .expect("endpoints.json is JSON")
    }

    /// The demo accounts.
    pub fn accounts(&self) -> Vec<Account> {
        serde_json::from_str(
            &std::fs::read_to_string(self.dir.join("demo-accounts.json"))
                .expect("demo-accounts.json"),
        )
        .expect("demo-accounts.json is JSON")
    }

    /// One demo account by name.
    pub fn account(&self, username: &str) -> Account {
        self.accounts()
            .into_iter()
            .find(|a| a.username == username)
            .unwrap_or_else(|| panic!("no demo account {username}"))
    }

    /// The address of a listener.
    pub fn addr(&self, port: Port) -> String {
        let key = match port {
            Port::ApiWithCert => "http",
            Port::Public => "public",
        };
        self.endpoints()[key]
            .as_str()
            .expect("endpoint")
            .trim_start_matches("https://")
            .to_string()
    }

    /// A gRPC channel to a listener (with the dev client certificate on the API port).
    pub async fn channel(&self, port: Port) -> Channel {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(self.dir.join("ca.pem")).unwrap(),
            ))
            .domain_name("localhost");
        if port == Port::ApiWithCert {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(self.dir.join("client.pem")).unwrap(),
                std::fs::read(self.dir.join("client-key.pem")).unwrap(),
            ));
        }
        Channel::from_shared(format!("https://{}", self.addr(port)))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    /// One HTTPS request to a listener; returns (status, body).
    pub async fn http(
        &self,
        port: Port,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let (cert, key) = (self.dir.join("client.pem"), self.dir.join("client-key.pem"));
        http_request(
            &self.addr(port),
            &self.dir.join("ca.pem"),
            (port == Port::ApiWithCert).then_some((cert.as_path(), key.as_path())),
            method,
            path,
            bearer,
            body,
        )
        .await
    }

    /// A dynamic token (class II reads) granted to the holder of `access` for `scope`.
    pub async fn grant(&self, access: &str, scope: &[String]) -> String {
        let body = serde_json::json!({ "scope": scope }).to_string();
        let (status, text) = self
            .http(
                Port::Public,
                "POST",
                "/v1/auth/dynamic-tokens",
                Some(access),
                Some(&body),
            )
            .await;
        assert_eq!(status, 200, "dynamic token for {scope:?}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    /// Logs a demo account in over HTTP on the public listener; returns the access token.
    pub async fn login(&self, username: &str) -> String {
        let a = self.account(username);
        let body = serde_json::json!({"username": a.username, "password": a.password}).to_string();
        let (status, text) = self
            .http(Port::Public, "POST", "/v1/auth/login", None, Some(&body))
            .await;
        assert_eq!(status, 200, "login {username}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }
}

/// A minimal HTTP/1.1 client over rustls (one request per connection), so tests speak
/// to the gateway exactly as curl would, without another HTTP stack in the tests.
/// `ca` verifies the server; `client` is an optional (certificate, key) pair. A
/// connection the server refuses gives status 0 and the error text.
pub async fn http_request(
    addr: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let s = match tls_connect(addr, ca, client).await {
        Ok(s) => s,
        Err(e) => return (0, e),
    };
    let body = body.unwrap_or("");
    let mut headers: Vec<(&str, String)> = Vec::new();
    if let Some(t) = bearer {
        headers.push(("authorization", format!("Bearer {t}")));
    }
    if !body.is_empty() || method == "POST" || method == "PATCH" {
        headers.push(("content-type", "application/json".into()));
    }
    let (status, raw) = exchange(s, method, path, &headers, body.as_bytes()).await;
    (status, String::from_utf8_lossy(&raw).into_owned())
}

async fn tls_connect(
    addr: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = if let Some((cert, key)) = client {
        let certs: Vec<_> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        b.with_client_auth_cert(certs, key).unwrap()
    } else {
        b.with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

/// Like [`http_request`] with any headers and a binary body; the body comes back as
/// bytes (status 0 and the error text if there was no HTTP answer).
#[allow(clippy::too_many_arguments)]
pub async fn http_bytes(
    addr: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    match tls_connect(addr, ca, client).await {
        Ok(s) => exchange(s, method, path, headers, body).await,
        Err(e) => (0, e.into_bytes()),
    }
}

async fn exchange(
    mut s: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PATCH" {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // A server may answer before it has read the whole body (413 for an oversized one)
    // and close: then the write fails, and the answer is still there to read.
    let written = s.write_all(&bytes).await;
    let mut raw = Vec::new();
    // A server that closes without TLS close_notify is fine for our purposes.
    let read = s.read_to_end(&mut raw).await;
    if let (Err(e), true) = (&written, raw.is_empty()) {
        return (0, format!("write: {e}").into_bytes());
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let rest = raw.get(split + 4..).unwrap_or_default();
    let Some(status) = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
    else {
        return (0, format!("no HTTP response: {read:?}").into_bytes());
    };
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    (status, body)
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let len = String::from_utf8_lossy(&s[..eol]).into_owned();
        let rest = &s[eol + 2..];
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Adds `authorization: Bearer <token>` to a gRPC request.
pub fn with_bearer<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    r
}

/// The rows of TableJson table `name` in a gateway view, as objects keyed by the
/// table's `structure` fields (so tests read cells by name, not by position).
pub fn table_rows(
    view: &serde_json::Value,
    name: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let t = view["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("not a view: {view}"))
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table {name:?} in {view}"));
    assert_eq!(t["type"], "TableJson", "{t}");
    let fields: Vec<String> = t["structure"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap().to_string())
        .collect();
    t["cell"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let row = row.as_array().unwrap();
            assert_eq!(row.len(), fields.len(), "row width matches structure: {t}");
            fields.iter().cloned().zip(row.iter().cloned()).collect()
        })
        .collect()
}
