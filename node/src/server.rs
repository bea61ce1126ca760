//! Server wiring: storage, ledger, committer, identity, and the listeners with their one
//! tower stack.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gridledger_core::note::NoteSigner;
use gridledger_proto::v1::auth_service_server::AuthServiceServer;
use gridledger_proto::v1::chain_service_server::ChainServiceServer;
use gridledger_proto::v1::data_service_server::DataServiceServer;
use gridledger_services::auth::layer::{AuthState, IdentityLimiter, Listener, authorize, unix_now};
use gridledger_services::auth_service::Auth;
use gridledger_services::chain::Chain;
use gridledger_services::data::Data;
use gridledger_services::gateway::{self, Gateway};
use tokio::sync::watch;

use crate::auth::NodeAuth;
use crate::backend::{Chains, ChainsConfig, NodeChain};
use crate::channels::Channels;
use crate::commit::Router;
use crate::config::{NodeConfig, read_signing_key};
use crate::ledger::Ledger;
use crate::store::rocks::RocksStore;
use crate::tls::{ReloadingTls, TlsFiles, bind, incoming};

/// Largest request to AuthService and DataService: these carry names and passwords, not
/// transactions.
pub const MAX_SMALL_MESSAGE_BYTES: usize = 64 << 10;

type ServeResult = Result<(), tonic::transport::Error>;

/// A started node.
pub struct Running {
    /// The API's bound address.
    pub api_addr: SocketAddr,
    /// The public listener's bound address, when enabled.
    pub public_addr: Option<SocketAddr>,
    /// The system channel's ledger.
    pub ledger: Arc<Ledger<RocksStore>>,
    /// Every channel's ledger.
    pub channels: Arc<Channels<RocksStore>>,
    /// The submission router (in-process submissions, e.g. the dev seed).
    pub router: Arc<Router<RocksStore>>,
    /// Accounts and tokens.
    pub auth: Arc<NodeAuth<RocksStore>>,
    /// The Raft handle (a single node is a one-member cluster).
    pub raft: Option<crate::raft::Raft>,
    /// Wakes the supervision scheduler to judge the plans now (it also runs daily).
    pub supervise: Arc<tokio::sync::Notify>,
    servers: Vec<tokio::task::JoinHandle<ServeResult>>,
    stop: watch::Sender<bool>,
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

/// The cluster a node without a `[cluster]` section runs: itself alone. A single node is
/// a one-member Raft cluster (DESIGN.md §7), so it runs the same write path, journal and
/// snapshots as a consortium; it serves no peer port, and short election timeouts make it
/// leader within a fraction of a second of starting.
fn single_member(cfg: &NodeConfig) -> crate::config::ClusterConfig {
    crate::config::ClusterConfig {
        id: 1,
        peer_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        members: vec![crate::config::MemberConfig {
            id: 1,
            name: cfg.node_id.clone(),
            peer: String::new(),
            api: cfg.api.listen.to_string(),
            checkpoint_key: None,
        }],
        bootstrap: true,
        quorum: Some(1),
        heartbeat_ms: 50,
        election_ms: [150, 300],
        snapshot_every: 5000,
        snapshot_keep: 1000,
    }
}

/// Starts the node: opens storage, checks the tip, binds the listeners and serves.
///
/// # Errors
/// Any failure to open, check or bind, with context.
pub async fn start(cfg: NodeConfig) -> anyhow::Result<Running> {
    let ledger = open_ledger(&cfg)?;
    let key = read_signing_key(&cfg.signing_key).map_err(anyhow::Error::msg)?;
    let channels = Channels::open(ledger.clone(), key)?;
    let (stop, stopped) = watch::channel(false);
    let mut servers = Vec::new();
    let (cluster, serve_peer) = match &cfg.cluster {
        Some(c) => (c.clone(), true),
        None => (single_member(&cfg), false),
    };
    let (raft, peer, members, tls) = start_raft(
        &cfg,
        &cluster,
        channels.clone(),
        stopped.clone(),
        serve_peer,
    )
    .await?;
    servers.extend(peer);
    let collection_keys = Arc::new(
        crate::private::CollectionKeys::load(&cfg.collection_keys_dir())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    tracing::info!(collections = ?collection_keys, "collection keys loaded");
    let router = Arc::new(Router::new(
        channels.clone(),
        cfg.commit_config(),
        crate::commit::Sink {
            raft: raft.clone(),
            proposer: cfg.node_id.clone(),
            channel: String::new(),
            runtime: tokio::runtime::Handle::current(),
        },
        collection_keys.clone(),
    ));
    let chains = Chains::start(ChainsConfig {
        channels: channels.clone(),
        router: router.clone(),
        max_tx_bytes: cfg.limits.max_tx_bytes,
        raft: Some(raft.clone()),
        quorum: cluster.quorum.unwrap_or(cluster.members.len() / 2 + 1),
        members,
        tls,
        witness_keys: cfg
            .witness_keys
            .iter()
            .map(|k| gridledger_core::note::VerifierKey::parse(k))
            .collect::<Result<_, _>>()?,
        collection_keys: collection_keys.clone(),
        documents: Arc::new(crate::documents::ObjectDocuments::local(
            &cfg.documents_dir(),
            cfg.data.max_document_bytes,
        )?),
    });
    let chain = chains.system();
    if !serve_peer {
        // Alone, this node elects itself at once; wait so that the first writes (the dev
        // seed, a client started next) find a leader.
        raft.wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.current_leader == Some(m.id), "leader")
            .await
            .map_err(|e| anyhow::anyhow!("the single-member cluster elected no leader: {e}"))?;
    }
    let secret = match &cfg.auth.token_key {
        Some(p) => Some(read_signing_key(p).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let auth = Arc::new(NodeAuth::open(
        ledger.clone(),
        cfg.auth.clone(),
        secret.as_ref(),
        collection_keys.clone(),
        unix_now,
    )?);
    match auth.prune() {
        Ok(n) if n > 0 => tracing::info!(records = n, "expired identity records pruned"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pruning expired identity records failed"),
    }
    {
        let auth = auth.clone();
        tokio::spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            hourly.tick().await;
            loop {
                hourly.tick().await;
                let a = auth.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || a.prune()).await {
                    tracing::warn!(error = %e, "pruning expired identity records failed");
                }
            }
        });
    }
    let supervise = supervise_daily(gridledger_services::data::Data::new(chain.clone()));
    let app = app(&cfg, chain, channels.clone(), auth.clone()).await?;

    // One server per listener over the same app; all stop on the same signal.
    let api_tls = ReloadingTls::new(TlsFiles {
        cert: cfg.api.cert.clone(),
        key: cfg.api.key.clone(),
        client_ca: Some(cfg.api.client_ca.clone()),
        require_client_cert: cfg.api.require_client_cert,
    })?;
    api_tls.watch(Duration::from_secs(cfg.limits.tls_reload_secs));
    let listener = bind(cfg.api.listen, "API").await?;
    let api_addr = listener.local_addr()?;
    servers.push(tokio::spawn(serve(
        cfg.limits.clone(),
        app.clone(),
        incoming(listener, api_tls, Listener::Api),
        stopped.clone(),
    )));

    let mut public_addr = None;
    if let Some(p) = &cfg.public {
        let tls = ReloadingTls::new(TlsFiles {
            cert: p.cert.clone(),
            key: p.key.clone(),
            client_ca: None,
            require_client_cert: false,
        })?;
        tls.watch(Duration::from_secs(cfg.limits.tls_reload_secs));
        let listener = bind(p.listen, "public listener").await?;
        public_addr = Some(listener.local_addr()?);
        servers.push(tokio::spawn(serve(
            cfg.limits.clone(),
            app,
            incoming(listener, tls, Listener::Public),
            stopped,
        )));
    }
    tracing::info!(%api_addr, ?public_addr, origin = ledger.origin(), node = ledger.node_id(), size = ledger.tip().size, "node serving");
    Ok(Running {
        api_addr,
        public_addr,
        ledger,
        channels,
        router,
        auth,
        raft: Some(raft),
        supervise,
        servers,
        stop,
    })
}

/// Opens Raft over the ledger's store, serves the peer port (unless alone), and
/// bootstraps the cluster if this node is the one configured to (once, on an empty log).
async fn start_raft(
    cfg: &NodeConfig,
    c: &crate::config::ClusterConfig,
    channels: Arc<Channels<RocksStore>>,
    stopped: watch::Receiver<bool>,
    serve_peer: bool,
) -> anyhow::Result<(
    crate::raft::Raft,
    Option<tokio::task::JoinHandle<ServeResult>>,
    Vec<crate::quorum::Member>,
    Option<tonic::transport::ClientTlsConfig>,
)> {
    use crate::raft::network::{MAX_PEER_MESSAGE_BYTES, PeerNetwork, PeerServer};
    use crate::raft::{NodeInfo, log_store::LogStore, state_machine::StateMachine};
    let ledger = channels.system().clone();
    let raft_cfg = openraft::Config {
        cluster_name: cfg.origin.clone(),
        heartbeat_interval: c.heartbeat_ms,
        election_timeout_min: c.election_ms[0],
        election_timeout_max: c.election_ms[1],
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(c.snapshot_every.max(1)),
        max_in_snapshot_log_to_keep: c.snapshot_keep,
        // Entries are whole blocks (up to a few MB as JSON): send a few per message so
        // a lagging follower's catch-up stays under the peer message cap.
        max_payload_entries: 8,
        ..Default::default()
    }
    .validate()?;
    let read =
        |p: &std::path::Path| std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()));
    let client_tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(
            &cfg.api.client_ca,
        )?))
        .identity(tonic::transport::Identity::from_pem(
            read(&cfg.api.cert)?,
            read(&cfg.api.key)?,
        ));
    let raft = crate::raft::Raft::new(
        c.id,
        Arc::new(raft_cfg),
        PeerNetwork::new(client_tls.clone()),
        LogStore::new(ledger.store().clone()),
        StateMachine::new(channels.clone()),
    )
    .await?;

    if !serve_peer {
        if !raft.is_initialized().await? {
            let me = &c.members[0];
            raft.initialize(std::collections::BTreeMap::from([(
                me.id,
                NodeInfo {
                    name: me.name.clone(),
                    peer: me.peer.clone(),
                    api: me.api.clone(),
                },
            )]))
            .await?;
        }
        return Ok((raft, None, Vec::new(), None));
    }

    // The peer port: mutual TLS always, node certificates only (checked per RPC).
    let tls = ReloadingTls::new(TlsFiles {
        cert: cfg.api.cert.clone(),
        key: cfg.api.key.clone(),
        client_ca: Some(cfg.api.client_ca.clone()),
        require_client_cert: true,
    })?;
    tls.watch(Duration::from_secs(cfg.limits.tls_reload_secs));
    let listener = bind(c.peer_listen, "peer port").await?;
    let peer_addr = listener.local_addr()?;
    let svc = gridledger_proto::v1::peer_service_server::PeerServiceServer::new(PeerServer::new(
        raft.clone(),
        {
            let ch = channels.clone();
            Arc::new(move |name: &str| ch.get(name).map(|l| l.tip().checkpoint.to_string()))
        },
    ))
    .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
    let mut stopped = stopped;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming(listener, tls, Listener::Api), async move {
                let _ = stopped.wait_for(|s| *s).await;
            }),
    );
    tracing::info!(%peer_addr, id = c.id, "peer port serving");

    if c.bootstrap && !raft.is_initialized().await? {
        let members: std::collections::BTreeMap<u64, NodeInfo> = c
            .members
            .iter()
            .map(|m| {
                (
                    m.id,
                    NodeInfo {
                        name: m.name.clone(),
                        peer: m.peer.clone(),
                        api: m.api.clone(),
                    },
                )
            })
            .collect();
        raft.initialize(members).await?;
        tracing::info!(members = c.members.len(), "cluster initialised");
    }

    // Quorum checkpoints: the other members' own signatures, collected over the peer port.
    let mut others = Vec::new();
    for m in c.members.iter().filter(|m| m.id != c.id) {
        let Some(k) = &m.checkpoint_key else {
            tracing::warn!(member = %m.name, "no checkpoint_key configured: its signatures are not collected");
            continue;
        };
        let key = gridledger_core::note::VerifierKey::parse(k)
            .map_err(|e| anyhow::anyhow!("cluster.members {}: checkpoint_key: {e}", m.name))?;
        others.push(crate::quorum::Member {
            peer: m.peer.clone(),
            key,
        });
    }
    drive_membership(raft.clone(), ledger);
    Ok((raft, Some(server), others, Some(client_tls)))
}

/// On the leader, turns approved node proposals (registrations on the ledger) into Raft
/// membership changes, re-evaluated after every block and every 2 s so every leader
/// converges on what the ledger approved:
/// - an approved node not yet in the cluster is added as a learner once its registration
///   is valid (today, by the leader's UTC date, is within valid_from..=valid_until; not
///   waiting: a node that is down must not stall the driver);
/// - a learner whose replication has caught up (within 100 entries) is promoted to voter;
/// - a removed registration, or one past its valid_until, is taken out, whether voter or
///   learner (never the last voter).
///
/// A change that fails is logged and the next one is tried, so one bad registration
/// cannot starve the rest.
fn drive_membership(raft: crate::raft::Raft, ledger: Arc<Ledger<RocksStore>>) {
    use openraft::ChangeMembers;
    use std::collections::BTreeSet;
    tokio::spawn(async move {
        let mut heights = ledger.heights();
        loop {
            tokio::select! {
                _ = heights.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            let m = raft.metrics().borrow().clone();
            if m.current_leader != Some(m.id) {
                continue;
            }
            let Ok(nodes) = ledger.nodes() else { continue };
            let membership = m.membership_config.membership().clone();
            let voters: BTreeSet<u64> = membership.voter_ids().collect();
            let known = |id: u64| membership.get_node(&id).is_some();
            let last = m.last_log_index.unwrap_or(0);
            let today = crate::admin::utc_day(std::time::SystemTime::now());
            for n in nodes {
                let id = n.raft_id;
                let out = n.removed
                    || (!n.valid_until.is_empty() && today.as_str() > n.valid_until.as_str());
                if !out && !n.valid_on(&today) {
                    continue; // not valid yet
                }
                let change = if out && voters.contains(&id) {
                    if voters.len() == 1 {
                        tracing::warn!(raft_id = id, "refusing to remove the last voter");
                        continue;
                    }
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else if out && known(id) {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                } else if out {
                    continue;
                } else if !known(id) {
                    let info = crate::raft::NodeInfo {
                        name: n.node_id.clone(),
                        peer: n.peer.clone(),
                        api: n.api.clone(),
                    };
                    tracing::info!(node = %n.node_id, raft_id = id, "adding an approved node as a learner");
                    if let Err(e) = raft.add_learner(id, info, false).await {
                        tracing::warn!(node = %n.node_id, error = %e, "adding the node failed; retrying later");
                    }
                    continue;
                } else if !voters.contains(&id) {
                    let matched = m
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten())
                        .map(|l| l.index)
                        .unwrap_or(0);
                    if matched + 100 < last {
                        continue; // still catching up
                    }
                    tracing::info!(node = %n.node_id, raft_id = id, "promoting a caught-up node to voter");
                    ChangeMembers::AddVoterIds(BTreeSet::from([id]))
                } else {
                    continue;
                };
                if let Err(e) = raft.change_membership(change, false).await {
                    tracing::warn!(raft_id = id, error = %e, "membership change failed; retrying later");
                }
            }
        }
    });
}

/// The supervision scheduler (DOMAIN.md §2.5): at start and then once a day, judges
/// every verification plan on the day's date (done, overdue, due within 30 days, open)
/// and logs the counts, with a warning naming the overdue plans, so operators and the
/// regulator's monitoring see them without asking. The same judgement is served on
/// demand (`GET /v1/plans`, `ListPlans`). The returned handle asks for a judgement now.
fn supervise_daily(
    data: gridledger_services::data::Data<NodeChain<RocksStore>>,
) -> Arc<tokio::sync::Notify> {
    let now = Arc::new(tokio::sync::Notify::new());
    let wake = now.clone();
    tokio::spawn(async move {
        let mut daily = tokio::time::interval(Duration::from_secs(86_400));
        loop {
            tokio::select! {
                _ = daily.tick() => {}
                _ = wake.notified() => {}
            }
            let d = data.clone();
            let judged = tokio::task::spawn_blocking(move || {
                let today = gridledger_services::data::today();
                d.plans("", "", &today, false).map(|v| (today, v))
            })
            .await;
            let (today, view) = match judged {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "supervision: judging the plans failed");
                    continue;
                }
                Err(_) => continue,
            };
            let counts = view
                .summary
                .iter()
                .find(|f| f.name == "counts")
                .map(|f| f.json.clone())
                .unwrap_or_default();
            let overdue: Vec<String> = view
                .tables
                .iter()
                .flat_map(|t| &t.rows)
                .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.json).ok())
                .filter(|v| v["status"] == "overdue")
                .map(|v| {
                    format!(
                        "{} ({} due {})",
                        v["plan_id"], v["subject_id"], v["due_date"]
                    )
                    .replace('"', "")
                })
                .collect();
            tracing::info!(day = %today, %counts, "supervision: verification plans judged");
            if !overdue.is_empty() {
                tracing::warn!(
                    day = %today,
                    overdue = overdue.len(),
                    first = %overdue.iter().take(10).cloned().collect::<Vec<_>>().join(", "),
                    "supervision: verification plans overdue"
                );
            }
        }
    });
    now
}

/// Every gRPC service and HTTP route, behind the one authentication and authorisation
/// layer.
async fn app(
    cfg: &NodeConfig,
    chain: Arc<NodeChain<RocksStore>>,
    channels: Arc<Channels<RocksStore>>,
    auth: Arc<NodeAuth<RocksStore>>,
) -> anyhow::Result<axum::Router> {
    let (health, health_svc) = tonic_health::server::health_reporter();
    health
        .set_serving::<ChainServiceServer<Chain<NodeChain<RocksStore>>>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gridledger_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let data = Data::new(chain.clone());
    let grpc = tonic::service::Routes::new(health_svc)
        .add_service(reflection)
        .add_service(
            ChainServiceServer::new(
                Chain::new(chain.clone()).with_stream_rate(cfg.limits.stream_tx_per_sec),
            )
            .max_decoding_message_size(cfg.limits.max_message_bytes),
        )
        .add_service(
            AuthServiceServer::new(Auth::new(auth.clone()))
                .max_decoding_message_size(MAX_SMALL_MESSAGE_BYTES),
        )
        .add_service(
            DataServiceServer::new(data.clone()).max_decoding_message_size(MAX_SMALL_MESSAGE_BYTES),
        )
        .add_service(
            gridledger_proto::v1::supplier_service_server::SupplierServiceServer::new(
                gridledger_services::supply::Supply::new(chain.clone()),
            )
            .max_decoding_message_size(cfg.limits.max_message_bytes),
        )
        .add_service(
            gridledger_proto::v1::admin_service_server::AdminServiceServer::new(
                crate::admin::Admin {
                    ledger: chain.ledger.clone(),
                    channels: channels.clone(),
                    raft: chain.raft.clone(),
                },
            ),
        );
    let http = gateway::router(
        Gateway {
            auth: auth.clone(),
            data,
            supply: gridledger_services::supply::Supply::new(chain.clone()),
            chain,
        },
        cfg.limits.max_http_body_bytes,
    );
    let state = Arc::new(AuthState {
        dir: auth,
        audience: cfg.origin.clone(),
        limiter: IdentityLimiter::new(cfg.limits.per_identity_concurrent),
        now: unix_now,
    });
    Ok(grpc
        .into_axum_router()
        .merge(http)
        .fallback(gateway::fallback)
        .layer(axum::middleware::from_fn_with_state(state, authorize)))
}

/// Serves `app` on one listener until `stopped` turns true.
///
/// The tower stack, outermost first:
/// - trace: one span per request, so every log line names the method it serves;
/// - TLS (ours, see `tls.rs`): mutual on the API port by default, server-only on the
///   public listener; the peer's certificate identity rides in the connection info;
/// - timeout: a stuck handler cannot hold a connection slot forever;
/// - global concurrency limit + load shedding: beyond max_concurrent_requests the node
///   answers RESOURCE_EXHAUSTED at once instead of queueing without bound;
/// - HTTP/2 keepalive: dead clients are noticed and their streams freed;
/// - the auth layer (in `app`): principal, role × operation matrix, per-identity limits;
/// - the routes: gRPC services and the HTTP gateway.
async fn serve(
    limits: crate::config::Limits,
    app: axum::Router,
    incoming: impl futures::Stream<Item = std::io::Result<crate::tls::PeerStream>> + Send + 'static,
    mut stopped: watch::Receiver<bool>,
) -> ServeResult {
    tonic::transport::Server::builder()
        .trace_fn(|req| tracing::info_span!("request", path = %req.uri().path()))
        .timeout(Duration::from_millis(limits.request_timeout_ms))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .load_shed(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(app))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await
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
        let mut all = futures::future::select_all(self.servers);
        tokio::select! {
            (r, _, _) = &mut all => { r??; anyhow::bail!("a listener stopped unexpectedly"); }
            _ = shutdown => {}
        }
        tracing::info!("shutting down");
        let _ = self.stop.send(true);
        let rest = all.into_inner();
        match tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(rest)).await {
            Ok(rs) => {
                for r in rs {
                    r??;
                }
            }
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
