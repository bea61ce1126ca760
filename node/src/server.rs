//! Server wiring: storage, ledger, committer, and the gRPC server with its tower stack.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gridledger_core::note::NoteSigner;
use gridledger_proto::v1::chain_service_server::ChainServiceServer;
use gridledger_services::chain::Chain;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::backend::NodeChain;
use crate::commit::Committer;
use crate::config::{NodeConfig, read_signing_key};
use crate::ledger::Ledger;
use crate::store::rocks::RocksStore;

/// A started node.
pub struct Running {
    /// The API's bound address.
    pub api_addr: SocketAddr,
    /// The ledger.
    pub ledger: Arc<Ledger<RocksStore>>,
    /// The committer (in-process submissions, e.g. the dev seed).
    pub committer: Committer,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// Opens the ledger and the checkpoint signer from a validated config.
///
/// # Errors
/// Configuration, storage or start-up check failures, with context.
pub fn open_ledger(cfg: &NodeConfig) -> anyhow::Result<Arc<Ledger<RocksStore>>> {
    let key = read_signing_key(&cfg.signing_key).map_err(anyhow::Error::msg)?;
    let signer = NoteSigner::new(&format!("{}/{}", cfg.origin, cfg.node_id), key)?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let store = Arc::new(RocksStore::open(&cfg.data_dir.join("ledger"))?);
    Ok(Arc::new(Ledger::open(
        store,
        &cfg.origin,
        &cfg.node_id,
        signer,
    )?))
}

/// Starts the node: opens storage, checks the tip, binds the API and serves.
///
/// # Errors
/// Any failure to open, check or bind, with context.
pub async fn start(cfg: NodeConfig) -> anyhow::Result<Running> {
    let ledger = open_ledger(&cfg)?;
    let committer = Committer::spawn(ledger.clone(), cfg.commit_config());
    let backend = Arc::new(NodeChain {
        ledger: ledger.clone(),
        committer: committer.clone(),
        max_tx_bytes: cfg.limits.max_tx_bytes,
    });

    let tls = {
        let cert = std::fs::read(&cfg.api.cert)?;
        let key = std::fs::read(&cfg.api.key)?;
        let ca = std::fs::read(&cfg.api.client_ca)?;
        ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .client_ca_root(Certificate::from_pem(ca))
            .client_auth_optional(!cfg.api.require_client_cert)
    };

    let (health, health_svc) = tonic_health::server::health_reporter();
    health
        .set_serving::<ChainServiceServer<Chain<NodeChain<RocksStore>>>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gridledger_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let chain = ChainServiceServer::new(Chain::new(backend))
        .max_decoding_message_size(cfg.limits.max_message_bytes);

    let listener = TcpListener::bind(cfg.api.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind the API on {}: {e}", cfg.api.listen))?;
    let api_addr = listener.local_addr()?;
    // Our own accept stream (so the bound port is known before serving) bypasses tonic's
    // tcp_nodelay setting: set it here, or small responses wait out delayed ACKs (~40 ms).
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |s| {
            s.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();

    // The tower stack, outermost first:
    // - trace: one span per RPC, so every log line names the method it serves;
    // - TLS (mutual by default): identity is established before any handler runs;
    // - timeout: a stuck handler cannot hold a connection slot forever;
    // - global concurrency limit + load shedding: beyond max_concurrent_requests the
    //   node answers RESOURCE_EXHAUSTED at once instead of queueing without bound (tonic
    //   sheds per connection, outside this layer, whenever the limit is not ready);
    // - HTTP/2 keepalive: dead clients are noticed and their streams freed.
    let server = Server::builder()
        .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()))
        .tls_config(tls)?
        .timeout(Duration::from_millis(cfg.limits.request_timeout_ms))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            cfg.limits.max_concurrent_requests,
        ))
        .load_shed(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(health_svc)
        .add_service(reflection)
        .add_service(chain)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        });
    let server = tokio::spawn(server);
    tracing::info!(%api_addr, origin = ledger.origin(), node = ledger.node_id(), size = ledger.tip().size, "node serving");
    Ok(Running {
        api_addr,
        ledger,
        committer,
        server,
        stop,
    })
}

impl Running {
    /// Serves until `shutdown` resolves, then stops gracefully (in-flight RPCs finish).
    ///
    /// # Errors
    /// Server failures.
    pub async fn serve_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut server = self.server;
        tokio::select! {
            r = &mut server => { r??; return Ok(()); }
            _ = shutdown => {}
        }
        tracing::info!("shutting down");
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(10), server).await {
            Ok(r) => r??,
            Err(_) => tracing::warn!("graceful shutdown timed out"),
        }
        Ok(())
    }
}

/// Runs a node from its config until `shutdown`.
///
/// # Errors
/// See [`start`].
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    start(cfg).await?.serve_until(shutdown).await
}
