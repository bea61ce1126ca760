//! TLS for the node's listeners, accepted by us rather than by tonic, for two reasons:
//! certificates are re-read without a restart ([`ReloadingTls`]), and each connection's
//! client certificate is parsed once into a [`ConnInfo`] that tonic attaches to every
//! request on that connection (the auth layer reads it from the request extensions).
//!
//! Handshakes run in their own tasks with a deadline, so a client that stalls mid-
//! handshake holds one small task, never the accept loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use gridledger_services::auth::layer::{CertIdentity, ConnInfo, Listener};
use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once per listener; connections beyond it are closed at
/// once, so a flood of half-open connections costs a bounded number of tasks.
pub const MAX_HANDSHAKES: usize = 1024;

/// Where a listener's certificates come from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM.
    pub key: PathBuf,
    /// CA for client certificates; `None` means server authentication only.
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required (when `client_ca` is set).
    pub require_client_cert: bool,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl TlsFiles {
    fn stamp(&self) -> Vec<Option<SystemTime>> {
        let mut v = vec![mtime(&self.cert), mtime(&self.key)];
        if let Some(ca) = &self.client_ca {
            v.push(mtime(ca));
        }
        v
    }

    /// Reads the files and builds a rustls server config.
    ///
    /// # Errors
    /// Which file is missing or unusable, and why.
    pub fn load(&self) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| anyhow::anyhow!("certificate {}: {e}", self.cert.display()))?;
        if certs.is_empty() {
            anyhow::bail!(
                "certificate {}: no certificate in the file",
                self.cert.display()
            );
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| anyhow::anyhow!("private key {}: {e}", self.key.display()))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca)
                    .map_err(|e| anyhow::anyhow!("client CA {}: {e}", ca.display()))?
                {
                    let c = c.map_err(|e| anyhow::anyhow!("client CA {}: {e}", ca.display()))?;
                    roots
                        .add(c)
                        .map_err(|e| anyhow::anyhow!("client CA {}: {e}", ca.display()))?;
                }
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let v = if self.require_client_cert {
                    v
                } else {
                    v.allow_unauthenticated()
                };
                builder.with_client_cert_verifier(
                    v.build()
                        .map_err(|e| anyhow::anyhow!("client CA {}: {e}", ca.display()))?,
                )
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_single_cert(certs, key).map_err(|e| {
            anyhow::anyhow!("{} / {}: {e}", self.cert.display(), self.key.display())
        })?;
        // gRPC needs h2; curl and browsers may speak HTTP/1.1 to the gateway routes.
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// A server config that is rebuilt when its files change (checked every `interval`)
/// or on SIGHUP. A reload that fails keeps the old config and logs why, so a half-
/// written certificate never takes a listener down.
pub struct ReloadingTls {
    files: TlsFiles,
    current: RwLock<(Arc<rustls::ServerConfig>, Vec<Option<SystemTime>>)>,
}

impl ReloadingTls {
    /// Loads the files once.
    ///
    /// # Errors
    /// See [`TlsFiles::load`].
    pub fn new(files: TlsFiles) -> anyhow::Result<Arc<Self>> {
        let cfg = files.load()?;
        let stamp = files.stamp();
        Ok(Arc::new(Self {
            files,
            current: RwLock::new((Arc::new(cfg), stamp)),
        }))
    }

    /// The config new connections use.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current.read().0.clone()
    }

    /// Re-reads the files if they changed (or if `force`). Returns whether the config
    /// was replaced.
    ///
    /// # Errors
    /// The new files are unusable (the old config stays).
    pub fn reload(&self, force: bool) -> anyhow::Result<bool> {
        let stamp = self.files.stamp();
        if !force && self.current.read().1 == stamp {
            return Ok(false);
        }
        let cfg = self.files.load()?;
        *self.current.write() = (Arc::new(cfg), stamp);
        tracing::info!(cert = %self.files.cert.display(), "TLS certificates reloaded");
        Ok(true)
    }

    /// Polls for changes every `interval` and reloads on SIGHUP, until the process ends.
    pub fn watch(self: &Arc<Self>, interval: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let force = tokio::select! {
                    _ = tick.tick() => false,
                    Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                };
                if let Err(e) = me.reload(force) {
                    tracing::error!(error = %e, "TLS reload failed; keeping the previous certificates");
                }
            }
        });
    }
}

/// A TLS connection with what we learned about its peer.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    info: ConnInfo,
}

impl Connected for PeerStream {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The subject of a verified client certificate: O, CN, OU.
pub fn cert_identity(der: &[u8]) -> Option<CertIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    Some(CertIdentity {
        org: first(&mut subject.iter_organization())?,
        name: first(&mut subject.iter_common_name())?,
        unit: first(&mut subject.iter_organizational_unit()).unwrap_or_default(),
    })
}

/// Accepts TCP connections, completes TLS handshakes concurrently, and yields the
/// streams (for `serve_with_incoming`).
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    kind: Listener,
) -> impl futures::Stream<Item = std::io::Result<PeerStream>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<PeerStream>>(256);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Small responses must not wait out delayed ACKs (~40 ms).
            let _ = tcp.set_nodelay(true);
            if tx.is_closed() {
                break;
            }
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(%remote, "too many TLS handshakes in progress; connection closed");
                continue;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| cert_identity(c));
                        let info = ConnInfo {
                            listener: kind,
                            remote: Some(remote),
                            cert,
                        };
                        let _ = tx
                            .send(Ok(PeerStream {
                                inner: stream,
                                info,
                            }))
                            .await;
                    }
                    Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Binds `addr`, reporting the address in the error.
///
/// # Errors
/// The bind failure.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind the {what} on {addr}: {e}"))
}
