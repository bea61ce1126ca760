//! `gridledger-node dev --nodes N`: a local consortium of N node processes replicated by
//! Raft, one org per node, on 127.0.0.1..N.
//!
//! First start writes, in DIR: one CA, a client certificate and signing key for the CLI
//! (an operator system of grid-north), `trust.json` (quorum: majority of the node keys),
//! and per node `node-i/` with its certificate, checkpoint key, `config.toml` and
//! `profile.toml`. Every start spawns `gridledger-node run --config node-i/config.toml`
//! for each node (pid in `node-i/node.pid`, log in `node-i/node.log`), seeds the demo
//! consortium through the leader on an empty ledger, and stays in the foreground; Ctrl-C
//! stops every node. A node that dies is restarted only with `--restart`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use gridledger_core::note::NoteSigner;
use gridledger_core::trust::TrustPolicy;
use gridledger_proto::v1 as pb;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::config::{
    ApiConfig, ClusterConfig, CommitSection, Limits, MemberConfig, NodeConfig, read_signing_key,
    write_secret,
};
use crate::dev::{DEV_ORIGIN, DevOptions};
use crate::pki::Ca;

/// The org each node runs for, in order.
const NODE_ORGS: [&str; 3] = ["reg-metrology", "grid-north", "grid-south"];

fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}"))
}

fn free_port(ip: IpAddr) -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// Creates everything on first start; returns the node configs.
fn prepare(dir: &Path, opts: &DevOptions, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    let configs: Vec<PathBuf> = (1..=n)
        .map(|i| node_dir(dir, i).join("config.toml"))
        .collect();
    if configs.iter().all(|c| c.exists()) {
        return Ok(configs);
    }
    std::fs::create_dir_all(dir)?;
    let ca = Ca::new("gridledger dev consortium").map_err(anyhow::Error::msg)?;
    std::fs::write(dir.join("ca.pem"), &ca.pem.cert)?;
    write_secret(&dir.join("ca-key.pem"), &ca.pem.key)?;
    let client = ca
        .client("dev-cli", "grid-north")
        .map_err(anyhow::Error::msg)?;
    std::fs::write(dir.join("client.pem"), &client.cert)?;
    write_secret(&dir.join("client-key.pem"), &client.key)?;
    let mut rng = rand::rngs::OsRng;
    write_secret(
        &dir.join("client-signing.key"),
        &hex::encode(SigningKey::generate(&mut rng).to_bytes()),
    )?;

    // Addresses: node i on 127.0.0.i; fixed ports from --listen, or free ones for port 0.
    let signing: Vec<SigningKey> = (0..n).map(|_| SigningKey::generate(&mut rng)).collect();
    let mut members = Vec::new();
    for i in 1..=n {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8));
        let (api, peer) = if opts.listen.port() == 0 {
            (free_port(ip)?, free_port(ip)?)
        } else {
            (opts.listen.port(), opts.listen.port() + 100)
        };
        members.push(MemberConfig {
            id: i as u64,
            name: format!("node-{i}"),
            peer: SocketAddr::new(ip, peer).to_string(),
            api: SocketAddr::new(ip, api).to_string(),
            checkpoint_key: Some(
                NoteSigner::new(&format!("{DEV_ORIGIN}/node-{i}"), signing[i - 1].clone())?
                    .verifier_key()
                    .to_string(),
            ),
        });
    }
    let mut keys = Vec::new();
    for c in [
        crate::demo::READINGS_COLLECTION,
        crate::demo::BINDINGS_COLLECTION,
        crate::demo::SUPPLY_COLLECTION,
    ] {
        crate::private::CollectionKeys::ensure_key(&dir.join("collection-keys"), c)?;
    }
    for (i, m) in members.iter().enumerate() {
        let nd = node_dir(dir, i + 1);
        std::fs::create_dir_all(&nd)?;
        let ip: SocketAddr = m.api.parse()?;
        let org = NODE_ORGS[i % NODE_ORGS.len()];
        let cert = ca
            .server(&m.name, org, &[ip.ip().to_string(), "localhost".into()])
            .map_err(anyhow::Error::msg)?;
        std::fs::write(nd.join("node.pem"), &cert.cert)?;
        write_secret(&nd.join("node-key.pem"), &cert.key)?;
        let key = signing[i].clone();
        write_secret(&nd.join("node-signing.key"), &hex::encode(key.to_bytes()))?;
        let signer = NoteSigner::new(&format!("{DEV_ORIGIN}/{}", m.name), key)?;
        keys.push(signer.verifier_key().to_string());
        let cfg = NodeConfig {
            node_id: m.name.clone(),
            origin: DEV_ORIGIN.into(),
            data_dir: nd.join("data"),
            signing_key: nd.join("node-signing.key"),
            api: ApiConfig {
                listen: ip,
                cert: nd.join("node.pem"),
                key: nd.join("node-key.pem"),
                client_ca: dir.join("ca.pem"),
                require_client_cert: true,
            },
            commit: CommitSection::default(),
            limits: Limits::default(),
            public: None,
            auth: Default::default(),
            cluster: Some(ClusterConfig {
                id: m.id,
                peer_listen: m.peer.parse()?,
                members: members.clone(),
                bootstrap: i == 0,
                quorum: None,
                heartbeat_ms: 200,
                election_ms: [800, 1600],
                snapshot_every: 5000,
                snapshot_keep: 1000,
            }),
            witness_keys: Vec::new(),
            // One key for every dev node: they stand in for the member orgs' nodes. In
            // production only nodes of the collection's member orgs hold it.
            data: crate::config::DataConfig {
                collection_keys: Some(dir.join("collection-keys")),
                documents: Some(nd.join("documents")),
                ..Default::default()
            },
        };
        cfg.validate()?;
        std::fs::write(nd.join("config.toml"), toml::to_string_pretty(&cfg)?)?;
        crate::dev::write_profile(
            &nd.join("profile.toml"),
            &format!("{} of the dev cluster", m.name),
            &format!("https://{}", m.api),
            dir,
            &nd.join("client-state"),
        )?;
    }
    let trust = TrustPolicy {
        origin: DEV_ORIGIN.into(),
        quorum: n / 2 + 1,
        keys,
        witnesses: vec![],
        witness_quorum: 0,
    };
    std::fs::write(
        dir.join("trust.json"),
        serde_json::to_string_pretty(&trust)? + "\n",
    )?;
    std::fs::write(
        dir.join("endpoints.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "nodes": members.iter().map(|m| serde_json::json!({
                "id": m.name, "grpc": format!("https://{}", m.api), "peer": m.peer,
            })).collect::<Vec<_>>(),
        }))? + "\n",
    )?;
    Ok(configs)
}

fn spawn_node(config: &Path) -> anyhow::Result<Child> {
    let nd = config.parent().expect("node dir");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(nd.join("node.log"))?;
    let child = Command::new(std::env::current_exe()?)
        .args(["run", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("spawning a node")?;
    std::fs::write(nd.join("node.pid"), format!("{}\n", child.id()))?;
    Ok(child)
}

async fn client(dir: &Path, api: &str) -> anyhow::Result<ChainServiceClient<Channel>> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(dir.join("ca.pem"))?))
        .identity(Identity::from_pem(
            std::fs::read(dir.join("client.pem"))?,
            std::fs::read(dir.join("client-key.pem"))?,
        ))
        .domain_name("localhost");
    let ch = Channel::from_shared(format!("https://{api}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await?;
    Ok(ChainServiceClient::new(ch))
}

/// Waits until some node names a leader; returns the leader's API address.
async fn find_leader(dir: &Path, members: &[MemberConfig]) -> anyhow::Result<(String, u64)> {
    for _ in 0..300 {
        for m in members {
            if let Ok(mut c) = client(dir, &m.api).await
                && let Ok(s) = c.get_status(pb::GetStatusRequest::default()).await
            {
                let s = s.into_inner();
                if let Some(l) = members.iter().find(|x| x.name == s.leader_id) {
                    return Ok((l.api.clone(), s.tree_size));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no leader elected within 30 s; see node-*/node.log")
}

/// Submits the demo through the leader, following it if it changes. A transaction that
/// already committed before a retry answers ALREADY_EXISTS (its nonce), which is fine.
async fn seed(dir: &Path, members: &[MemberConfig], opts: &DevOptions) -> anyhow::Result<usize> {
    let key = read_signing_key(&dir.join("client-signing.key")).map_err(anyhow::Error::msg)?;
    let phases = crate::demo::seed(
        DEV_ORIGIN,
        key.verifying_key().as_bytes(),
        &[],
        opts.meters,
        opts.days,
    );
    let mut total = 0;
    for phase in phases {
        'retry: for attempt in 0..20 {
            let (leader, _) = find_leader(dir, members).await?;
            // The leader may be elected before its API port is bound: retry.
            let c = match client(dir, &leader).await {
                Ok(c) => c,
                Err(e) if attempt < 19 => {
                    tracing::debug!(error = %e, "leader not reachable yet");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'retry;
                }
                Err(e) => return Err(e),
            };
            // Genesis must go in order; later phases are independent.
            let chunk = if total == 0 { 1 } else { 256 };
            for part in phase.chunks(chunk) {
                let sends = part.iter().map(|sub| {
                    let mut c = c.clone();
                    let sub = sub.clone();
                    async move {
                        c.submit(pb::SubmitRequest {
                            signed_tx: sub.leaf.into(),
                            private_payload: sub.private,
                        })
                        .await
                    }
                });
                for r in futures::future::join_all(sends).await {
                    match r {
                        Ok(_) => {}
                        Err(s) if s.code() == tonic::Code::AlreadyExists => {}
                        Err(s) if s.code() == tonic::Code::Unavailable && attempt < 19 => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue 'retry;
                        }
                        Err(s) => anyhow::bail!("seeding the demo: {}: {}", s.code(), s.message()),
                    }
                }
            }
            break;
        }
        total += phase.len();
    }
    Ok(total)
}

/// Runs the cluster until `shutdown`.
///
/// # Errors
/// Set-up failures; a node that cannot start.
pub async fn run(
    opts: DevOptions,
    nodes: usize,
    restart: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!((2..=9).contains(&nodes), "--nodes must be between 2 and 9");
    let dir = if opts.data_dir.is_absolute() {
        opts.data_dir.clone()
    } else {
        std::env::current_dir()?.join(&opts.data_dir)
    };
    let configs = prepare(&dir, &opts, nodes)?;
    let members = NodeConfig::load(&configs[0])?
        .cluster
        .expect("dev cluster configs have a cluster section")
        .members;
    let mut children = Vec::new();
    for c in &configs {
        children.push(Some(spawn_node(c)?));
    }
    let (leader, size) = find_leader(&dir, &members).await?;
    if size == 0 {
        let started = std::time::Instant::now();
        let n = seed(&dir, &members, &opts).await?;
        tracing::info!(
            transactions = n,
            seconds = started.elapsed().as_secs_f64(),
            "demo consortium seeded"
        );
    }
    println!(
        "gridledger dev cluster of {nodes} nodes serving {DEV_ORIGIN}; leader at https://{leader}"
    );
    for (i, m) in members.iter().enumerate() {
        println!(
            "  {}: https://{} (peer {}), profile {}",
            m.name,
            m.api,
            m.peer,
            node_dir(&dir, i + 1).join("profile.toml").display()
        );
    }
    println!(
        "  trust: {} (quorum {})",
        dir.join("trust.json").display(),
        nodes / 2 + 1
    );

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for (i, slot) in children.iter_mut().enumerate() {
            let exited = match slot.as_mut() {
                Some(ch) => ch.try_wait()?.map(|s| s.to_string()),
                None => None,
            };
            if let Some(status) = exited {
                *slot = None;
                if restart {
                    tracing::warn!(node = i + 1, %status, "node exited; restarting it");
                    *slot = Some(spawn_node(&configs[i])?);
                } else {
                    tracing::warn!(node = i + 1, %status, "node exited; restart it with `gridledger-node run --config {}`", configs[i].display());
                }
            }
        }
    }
    for ch in children.iter_mut().flatten() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(ch.id().to_string())
            .status();
    }
    for ch in children.iter_mut().flatten() {
        let _ = ch.wait();
    }
    Ok(())
}
