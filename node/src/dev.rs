//! `gridledger-node dev`: a complete single-node consortium in one directory, for a new
//! user's first minutes and for the integration tests.
//!
//! First start creates, in DIR: a development CA and node/client certificates, the
//! node's checkpoint key and the CLI's transaction key, `node.toml`, `trust.json`; then
//! it seeds the demo consortium. Every start (re)writes `endpoints.json` and
//! `profile.toml` with the address actually bound.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use gridledger_core::note::NoteSigner;
use gridledger_core::trust::TrustPolicy;
use serde_json::json;

use crate::config::{ApiConfig, CommitSection, Limits, NodeConfig, read_signing_key, write_secret};
use crate::pki::Ca;

/// Origin of the dev ledger.
pub const DEV_ORIGIN: &str = "gridledger.example/metering";

/// Options of the dev command.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Directory holding everything.
    pub data_dir: PathBuf,
    /// API address.
    pub listen: SocketAddr,
    /// Demo meters to seed.
    pub meters: usize,
    /// Days of readings per meter.
    pub days: usize,
}

fn abs(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Creates the directory's keys, certificates and config if they do not exist yet.
/// Returns the node config.
///
/// # Errors
/// I/O and certificate failures, with the file concerned.
pub fn prepare(opts: &DevOptions) -> anyhow::Result<NodeConfig> {
    let dir = abs(&opts.data_dir)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join("node.toml");
    if config_path.exists() {
        let mut cfg = NodeConfig::load(&config_path)?;
        cfg.api.listen = opts.listen;
        return Ok(cfg);
    }
    let ca = Ca::new("gridledger dev consortium").map_err(anyhow::Error::msg)?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !opts.listen.ip().is_unspecified() && !names.contains(&opts.listen.ip().to_string()) {
        names.push(opts.listen.ip().to_string());
    }
    let node = ca
        .server("node-1", "grid-north", &names)
        .map_err(anyhow::Error::msg)?;
    let client = ca
        .client("dev-cli", "grid-north")
        .map_err(anyhow::Error::msg)?;
    std::fs::write(dir.join("ca.pem"), &ca.pem.cert)?;
    write_secret(&dir.join("ca-key.pem"), &ca.pem.key)?;
    std::fs::write(dir.join("node.pem"), &node.cert)?;
    write_secret(&dir.join("node-key.pem"), &node.key)?;
    std::fs::write(dir.join("client.pem"), &client.cert)?;
    write_secret(&dir.join("client-key.pem"), &client.key)?;
    let mut rng = rand::rngs::OsRng;
    write_secret(
        &dir.join("node-signing.key"),
        &hex::encode(SigningKey::generate(&mut rng).to_bytes()),
    )?;
    write_secret(
        &dir.join("client-signing.key"),
        &hex::encode(SigningKey::generate(&mut rng).to_bytes()),
    )?;

    let cfg = NodeConfig {
        node_id: "node-1".into(),
        origin: DEV_ORIGIN.into(),
        data_dir: dir.join("data"),
        signing_key: dir.join("node-signing.key"),
        api: ApiConfig {
            listen: opts.listen,
            cert: dir.join("node.pem"),
            key: dir.join("node-key.pem"),
            client_ca: dir.join("ca.pem"),
            require_client_cert: true,
        },
        commit: CommitSection::default(),
        limits: Limits::default(),
    };
    cfg.validate()?;
    std::fs::write(&config_path, toml::to_string_pretty(&cfg)?)?;

    let signer = NoteSigner::new(
        &format!("{}/{}", cfg.origin, cfg.node_id),
        read_signing_key(&cfg.signing_key).map_err(anyhow::Error::msg)?,
    )?;
    let trust = TrustPolicy {
        origin: cfg.origin.clone(),
        quorum: 1,
        keys: vec![signer.verifier_key().to_string()],
        witnesses: vec![],
        witness_quorum: 0,
    };
    std::fs::write(
        dir.join("trust.json"),
        serde_json::to_string_pretty(&trust)? + "\n",
    )?;
    Ok(cfg)
}

/// Writes `endpoints.json` and `profile.toml` for the bound address.
///
/// # Errors
/// I/O failures.
pub fn write_client_files(dir: &Path, api: SocketAddr) -> anyhow::Result<()> {
    let dir = abs(dir)?;
    let host = if api.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), api.port())
    } else {
        api
    };
    let endpoint = format!("https://{host}");
    let profile = format!(
        "# gridledger CLI profile for the dev node (written by `gridledger-node dev`).\n\
         endpoint = {endpoint:?}\n\
         server_name = \"localhost\"\n\
         ca = {:?}\n\
         cert = {:?}\n\
         key = {:?}\n\
         signing_key = {:?}\n\
         trust = {:?}\n\
         state_dir = {:?}\n",
        dir.join("ca.pem"),
        dir.join("client.pem"),
        dir.join("client-key.pem"),
        dir.join("client-signing.key"),
        dir.join("trust.json"),
        dir.join("client-state"),
    );
    // Written to a temporary name and renamed, so a reader never sees half a file.
    let tmp = dir.join(".profile.toml.tmp");
    std::fs::write(&tmp, profile)?;
    std::fs::rename(&tmp, dir.join("profile.toml"))?;
    let tmp = dir.join(".endpoints.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&json!({ "grpc": endpoint }))? + "\n",
    )?;
    std::fs::rename(&tmp, dir.join("endpoints.json"))?;
    Ok(())
}

/// Runs the dev node until `shutdown`.
///
/// # Errors
/// Start-up failures.
pub async fn run(
    opts: DevOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let cfg = prepare(&opts)?;
    let dir = abs(&opts.data_dir)?;
    let running = crate::server::start(cfg.clone()).await?;
    if running.ledger.tip().size == 0 {
        let client_key =
            read_signing_key(&dir.join("client-signing.key")).map_err(anyhow::Error::msg)?;
        let started = std::time::Instant::now();
        let phases = crate::demo::seed(
            &cfg.origin,
            client_key.verifying_key().as_bytes(),
            opts.meters,
            opts.days,
        );
        let mut total = 0;
        for (i, phase) in phases.into_iter().enumerate() {
            // Genesis goes one by one, in order; later phases go in parallel.
            if i == 0 {
                for leaf in phase {
                    running
                        .committer
                        .submit(leaf.into())
                        .await
                        .context("seeding genesis")?;
                    total += 1;
                }
            } else {
                let n = phase.len();
                let results = futures::future::join_all(
                    phase
                        .into_iter()
                        .map(|leaf| running.committer.submit(leaf.into())),
                )
                .await;
                if let Some(e) = results.into_iter().find_map(Result::err) {
                    anyhow::bail!("seeding demo data failed: {e}");
                }
                total += n;
            }
        }
        tracing::info!(
            transactions = total,
            seconds = started.elapsed().as_secs_f64(),
            "demo consortium seeded"
        );
    }
    write_client_files(&dir, running.api_addr)?;
    let tip = running.ledger.tip();
    let profile = dir.join("profile.toml");
    println!(
        "gridledger dev node {} serving {} on https://{}",
        cfg.node_id, cfg.origin, running.api_addr
    );
    println!(
        "  ledger: {} transactions in {} blocks; data in {}",
        tip.size,
        tip.height,
        dir.display()
    );
    println!("  try:    export GRIDLEDGER_PROFILE={}", profile.display());
    println!("          gridledger status --json");
    println!("          gridledger receipt --index 0 -o leaf0.tlog-proof");
    println!(
        "          gridledger verify leaf0.tlog-proof --trust {}",
        dir.join("trust.json").display()
    );
    println!("          gridledger load --count 20000 --stream --json");
    running.serve_until(shutdown).await
}
