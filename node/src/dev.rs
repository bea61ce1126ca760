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

use crate::config::{
    ApiConfig, AuthConfig, CommitSection, Limits, NodeConfig, PublicConfig, read_signing_key,
    write_secret,
};
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
    /// Public listener address (TLS with server authentication, JWTs).
    pub public_listen: SocketAddr,
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
        if let Some(p) = &mut cfg.public {
            p.listen = opts.public_listen;
        }
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
    let public = ca
        .issue(
            crate::pki::LeafKind::PublicServer,
            "localhost",
            "grid-north",
            &names,
            crate::pki::LEAF_DAYS,
        )
        .map_err(anyhow::Error::msg)?;
    std::fs::write(dir.join("public.pem"), &public.cert)?;
    write_secret(&dir.join("public-key.pem"), &public.key)?;
    std::fs::write(dir.join("ca.pem"), &ca.pem.cert)?;
    write_secret(&dir.join("ca-key.pem"), &ca.pem.key)?;
    std::fs::write(dir.join("node.pem"), &node.cert)?;
    write_secret(&dir.join("node-key.pem"), &node.key)?;
    std::fs::write(dir.join("client.pem"), &client.cert)?;
    write_secret(&dir.join("client-key.pem"), &client.key)?;
    // Every demo org's system identity: a client certificate of the org and the org's
    // demo signing key (registered with the org's roles in the demo genesis).
    for o in crate::demo::ORGS {
        let id = dir.join("profiles").join(o.id);
        std::fs::create_dir_all(&id)?;
        let pem = ca
            .client(&format!("{}-system", o.id), o.id)
            .map_err(anyhow::Error::msg)?;
        std::fs::write(id.join("client.pem"), &pem.cert)?;
        write_secret(&id.join("client-key.pem"), &pem.key)?;
        write_secret(
            &id.join("signing.key"),
            &hex::encode(crate::demo::org_key(o.id).to_bytes()),
        )?;
    }
    let mut rng = rand::rngs::OsRng;
    write_secret(
        &dir.join("node-signing.key"),
        &hex::encode(SigningKey::generate(&mut rng).to_bytes()),
    )?;
    write_secret(
        &dir.join("client-signing.key"),
        &hex::encode(SigningKey::generate(&mut rng).to_bytes()),
    )?;
    write_secret(
        &dir.join("token.key"),
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
        public: Some(PublicConfig {
            listen: opts.public_listen,
            cert: dir.join("public.pem"),
            key: dir.join("public-key.pem"),
        }),
        auth: AuthConfig {
            token_key: Some(dir.join("token.key")),
            orgs: crate::demo::ORGS.iter().map(|o| o.id.to_string()).collect(),
            ..AuthConfig::default()
        },
        cluster: None,
        witness_keys: Vec::new(),
        data: crate::config::DataConfig {
            collection_keys: Some(dir.join("collection-keys")),
            documents: Some(dir.join("documents")),
            ..Default::default()
        },
    };
    cfg.validate()?;
    // The dev node stands in for every member org, so it holds every collection's key.
    for c in [
        crate::demo::READINGS_COLLECTION,
        crate::demo::BINDINGS_COLLECTION,
        crate::demo::SUPPLY_COLLECTION,
    ] {
        crate::private::CollectionKeys::ensure_key(&dir.join("collection-keys"), c)?;
    }
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

/// Writes a CLI profile for `endpoint` that uses the dev client files in `dir` (CA,
/// client certificate, signing key, trust policy). Written to a temporary name and
/// renamed, so a reader never sees half a file.
///
/// # Errors
/// I/O failures.
pub fn write_profile(
    path: &Path,
    what: &str,
    endpoint: &str,
    dir: &Path,
    state_dir: &Path,
) -> std::io::Result<()> {
    write_profile_as(
        path,
        what,
        endpoint,
        dir,
        &[
            dir.join("client.pem"),
            dir.join("client-key.pem"),
            dir.join("client-signing.key"),
        ],
        state_dir,
        // The dev CLI's certificate and key are grid-north's (an operator).
        "grid-north",
    )
}

/// Writes a CLI profile whose identity (certificate, key, signing key) is `identity`.
///
/// # Errors
/// I/O failures.
pub fn write_profile_as(
    path: &Path,
    what: &str,
    endpoint: &str,
    dir: &Path,
    identity: &[std::path::PathBuf; 3],
    state_dir: &Path,
    org: &str,
) -> std::io::Result<()> {
    let profile = format!(
        "# gridledger CLI profile for {what} (written by `gridledger-node dev`).\n\
         endpoint = {endpoint:?}\n\
         org = {org:?}\n\
         server_name = \"localhost\"\n\
         ca = {:?}\n\
         cert = {:?}\n\
         key = {:?}\n\
         signing_key = {:?}\n\
         trust = {:?}\n\
         state_dir = {:?}\n",
        dir.join("ca.pem"),
        identity[0],
        identity[1],
        identity[2],
        dir.join("trust.json"),
        state_dir,
    );
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, profile)?;
    std::fs::rename(&tmp, path)
}

/// Writes `endpoints.json` and `profile.toml` for the bound address.
///
/// # Errors
/// I/O failures.
pub fn write_client_files(
    dir: &Path,
    api: SocketAddr,
    public: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let dir = abs(dir)?;
    let reachable = |a: SocketAddr| {
        if a.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port())
        } else {
            a
        }
    };
    let host = reachable(api);
    let endpoint = format!("https://{host}");
    write_profile(
        &dir.join("profile.toml"),
        "the dev node",
        &endpoint,
        &dir,
        &dir.join("client-state"),
    )?;
    // One profile per demo org (its organisation-system certificate and signing key), so
    // each org's view can be tried at once: `GRIDLEDGER_PROFILE=DIR/profiles/sup-alpha.toml`.
    for o in crate::demo::ORGS {
        let id = dir.join("profiles").join(o.id);
        if id.join("client.pem").exists() {
            write_profile_as(
                &dir.join("profiles").join(format!("{}.toml", o.id)),
                &format!("{} ({}), an organisation system", o.name, o.id),
                &endpoint,
                &dir,
                &[
                    id.join("client.pem"),
                    id.join("client-key.pem"),
                    id.join("signing.key"),
                ],
                &id.join("client-state"),
                o.id,
            )?;
        }
    }
    let tmp = dir.join(".endpoints.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&json!({
            "grpc": endpoint,
            "http": endpoint,
            "public": public.map(|p| format!("https://{}", reachable(p))),
        }))? + "\n",
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
        let mut token_keys: Vec<(String, [u8; 32])> = running
            .auth
            .token_signers()
            .map(|s| (s.org().to_string(), s.public_key()))
            .collect();
        // The signers come from a map: sort, so the genesis (and every leaf index and
        // nonce after it) is the same on every run.
        token_keys.sort();
        let phases = crate::demo::seed(
            &cfg.origin,
            client_key.verifying_key().as_bytes(),
            &token_keys,
            opts.meters,
            opts.days,
        );
        let mut total = 0;
        for (i, phase) in phases.into_iter().enumerate() {
            // Genesis goes one by one, in order; later phases go in parallel.
            if i == 0 {
                for sub in phase {
                    running
                        .router
                        .submit(sub.leaf.into(), None)
                        .await
                        .context("seeding genesis")?;
                    total += 1;
                }
            } else {
                let n = phase.len();
                let results = futures::future::join_all(
                    phase
                        .into_iter()
                        .map(|sub| running.router.submit(sub.leaf.into(), sub.private)),
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
        // Judge the seeded plans now rather than tomorrow.
        running.supervise.notify_one();
    }
    let accounts_file = dir.join("demo-accounts.json");
    if !accounts_file.exists() {
        let accounts = crate::demo::accounts(opts.meters, || {
            use rand::Rng as _;
            rand::rngs::OsRng
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(20)
                .map(char::from)
                .collect()
        });
        for a in &accounts {
            running
                .auth
                .put_account(&a.username, &a.org, &a.roles, &a.meters, &a.password)
                .map_err(|e| anyhow::anyhow!("demo account {}: {e}", a.username))?;
        }
        write_secret(
            &accounts_file,
            &(serde_json::to_string_pretty(&accounts)? + "\n"),
        )?;
    }
    write_client_files(&dir, running.api_addr, running.public_addr)?;
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
    if let Some(p) = running.public_addr {
        println!(
            "  public: https://{p} (end users; accounts in {})",
            accounts_file.display()
        );
        println!(
            "          curl --cacert {} -d '{{\"username\":\"resident-1\",\"password\":\"...\"}}' https://localhost:{}/v1/auth/login",
            dir.join("ca.pem").display(),
            p.port()
        );
    }
    running.serve_until(shutdown).await
}
