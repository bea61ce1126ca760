//! The node binary's commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use gridledger_core::note::NoteSigner;

use crate::config::{NodeConfig, read_signing_key};
use crate::ledger::Ledger;
use crate::store::Store as _;
use crate::store::rocks::RocksStore;

/// gridledger node.
#[derive(Debug, Parser)]
#[command(
    name = "gridledger-node",
    version,
    about = "gridledger node: a permissioned, verifiable ledger for legal-metrology data"
)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "GRIDLEDGER_LOG_JSON")]
    pub log_json: bool,
    /// Command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a self-contained development node with a demo consortium in DIR.
    Dev {
        /// Directory for keys, certificates, config and data (reused on restart).
        #[arg(long)]
        data_dir: PathBuf,
        /// API address (port 0 picks a free port; endpoints.json says which).
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: SocketAddr,
        /// Public listener address for end users (TLS + JWT).
        #[arg(long, default_value = "127.0.0.1:7444")]
        public_listen: SocketAddr,
        /// Demo meters to seed on first start.
        #[arg(long, default_value_t = 2000)]
        meters: usize,
        /// Days of readings per demo meter.
        #[arg(long, default_value_t = 3)]
        days: usize,
        /// Run a local cluster of this many node processes (Raft, one org per node,
        /// addresses 127.0.0.1..N). 1: a single standalone node.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// With --nodes: restart a node process that exits.
        #[arg(long)]
        restart: bool,
    },
    /// Print the token key of every org this node hosts (auth.orgs), for the org's admin
    /// to register on the ledger: `gridledger keys register --role token-issuer ...`.
    TokenKeys {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a node from a configuration file.
    Run {
        /// Configuration file (TOML; see docs/OPERATIONS.md).
        #[arg(long)]
        config: PathBuf,
    },
    /// Recompute everything from the stored leaves and report the first mismatch.
    /// Run it with the node stopped.
    Audit {
        /// Configuration file (for a dev directory: DIR/node.toml).
        #[arg(long)]
        config: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Rebuild the derived state (records, indexes, consortium state, nonces) of every
    /// channel from the log. Run it with the node stopped.
    Reindex {
        /// Configuration file (for a dev directory: DIR/node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Consortium PKI: create a CA and issue node, organisation-system and public-server
    /// certificates (PEM; private keys mode 0600; never overwrites).
    Pki {
        /// What to create.
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Write a consistent RocksDB checkpoint of the ledger to a new directory.
    /// Run it with the node stopped.
    Backup {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Target directory (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
}

/// PKI commands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a CA: DIR/ca.pem and DIR/ca-key.pem.
    Ca {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Organisation (consortium) name in the subject.
        #[arg(long)]
        org: String,
        /// Validity in days.
        #[arg(long, default_value_t = crate::pki::CA_DAYS)]
        days: u32,
    },
    /// Issue a node certificate (server and client authentication): OUT/<node-id>.pem.
    Node {
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long)]
        ca: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Node id (the common name).
        #[arg(long)]
        node_id: String,
        /// The member organisation running the node.
        #[arg(long)]
        org: String,
        /// DNS name or IP address the node is reached at (repeat for several).
        #[arg(long = "san", required = true)]
        sans: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = crate::pki::LEAF_DAYS)]
        days: u32,
    },
    /// Issue an organisation-system client certificate: OUT/<name>.pem.
    Org {
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long)]
        ca: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// The organisation.
        #[arg(long)]
        org: String,
        /// The system's name (the common name), e.g. `erp-connector`.
        #[arg(long)]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = crate::pki::LEAF_DAYS)]
        days: u32,
    },
    /// Issue a user-facing server certificate (public listener): OUT/<name>.pem.
    Server {
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long)]
        ca: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// The organisation operating the listener.
        #[arg(long)]
        org: String,
        /// DNS name or IP address end users connect to (repeat for several).
        #[arg(long = "san", required = true)]
        sans: Vec<String>,
        /// File name stem.
        #[arg(long, default_value = "public")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = crate::pki::LEAF_DAYS)]
        days: u32,
    },
}

fn pki(cmd: PkiCommand) -> anyhow::Result<()> {
    use crate::pki::{Ca, LeafKind, write_pair};
    let (out, name, pem) = match cmd {
        PkiCommand::Ca { out, org, days } => {
            let ca = Ca::with_days(&org, days).map_err(anyhow::Error::msg)?;
            (out, "ca".to_string(), ca.pem)
        }
        PkiCommand::Node {
            ca,
            out,
            node_id,
            org,
            sans,
            days,
        } => {
            let pem = Ca::load(&ca)
                .map_err(anyhow::Error::msg)?
                .issue(LeafKind::Node, &node_id, &org, &sans, days)
                .map_err(anyhow::Error::msg)?;
            (out, node_id, pem)
        }
        PkiCommand::Org {
            ca,
            out,
            org,
            name,
            days,
        } => {
            let pem = Ca::load(&ca)
                .map_err(anyhow::Error::msg)?
                .issue(LeafKind::OrgSystem, &name, &org, &[], days)
                .map_err(anyhow::Error::msg)?;
            (out, name, pem)
        }
        PkiCommand::Server {
            ca,
            out,
            org,
            sans,
            name,
            days,
        } => {
            let pem = Ca::load(&ca)
                .map_err(anyhow::Error::msg)?
                .issue(LeafKind::PublicServer, &sans[0], &org, &sans, days)
                .map_err(anyhow::Error::msg)?;
            (out, name, pem)
        }
    };
    anyhow::ensure!(
        !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..",
        "{name:?} cannot be used as a file name"
    );
    write_pair(&out, &name, &pem).map_err(anyhow::Error::msg)?;
    println!(
        "wrote {} and {} (mode 0600)",
        out.join(format!("{name}.pem")).display(),
        out.join(format!("{name}-key.pem")).display()
    );
    Ok(())
}

/// Sets up logging.
pub fn init_tracing(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

async fn ctrl_c() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs a parsed command line. Returns the process exit code.
///
/// # Errors
/// Any failure, with context, for main to print.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Dev {
            data_dir,
            listen,
            public_listen,
            meters,
            days,
            nodes,
            restart,
        } => {
            let opts = crate::dev::DevOptions {
                data_dir,
                listen,
                public_listen,
                meters,
                days,
            };
            if nodes > 1 {
                crate::dev_cluster::run(opts, nodes, restart, ctrl_c()).await?;
            } else {
                crate::dev::run(opts, ctrl_c()).await?;
            }
            Ok(0)
        }
        Command::TokenKeys { config } => {
            let cfg = NodeConfig::load(&config)?;
            let Some(path) = &cfg.auth.token_key else {
                anyhow::bail!(
                    "auth.token_key is not set in {}: this node issues no tokens",
                    config.display()
                );
            };
            let secret = crate::config::read_signing_key(path).map_err(anyhow::Error::msg)?;
            for org in &cfg.auth.orgs {
                let k = crate::auth::org_token_key(&secret, org);
                println!("{org} {}", hex::encode(k.verifying_key().to_bytes()));
            }
            Ok(0)
        }
        Command::Run { config } => {
            let cfg = NodeConfig::load(&config)?;
            crate::server::run(cfg, ctrl_c()).await?;
            Ok(0)
        }
        Command::Audit { config, quiet } => {
            let cfg = NodeConfig::load(&config)?;
            let key = read_signing_key(&cfg.signing_key).map_err(anyhow::Error::msg)?;
            let signer = NoteSigner::new(&format!("{}/{}", cfg.origin, cfg.node_id), key)?;
            let store = Arc::new(
                RocksStore::open(&cfg.data_dir.join("ledger"))
                    .context("opening the ledger (is the node still running?)")?,
            );
            let ledger = Ledger::open_for_audit(store, &cfg.origin, &cfg.node_id, signer)?;
            let tip = ledger.tip();
            let bar = if quiet {
                indicatif::ProgressBar::hidden()
            } else {
                indicatif::ProgressBar::new(tip.size)
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} leaves ({per_sec}, eta {eta})",
                )
                .expect("static template"),
            );
            let report = ledger.audit(|done, _| bar.set_position(done))?;
            bar.finish_and_clear();
            match report.first_mismatch {
                None => {
                    println!(
                        "audit ok: {} leaves, {} blocks, root {} at size {}",
                        report.leaves,
                        report.blocks,
                        hex::encode(tip.root),
                        tip.size
                    );
                    Ok(0)
                }
                Some(m) => {
                    println!(
                        "audit FAILED after {} leaves and {} blocks: {m}",
                        report.leaves, report.blocks
                    );
                    Ok(1)
                }
            }
        }
        Command::Reindex { config } => {
            let cfg = NodeConfig::load(&config)?;
            let key = read_signing_key(&cfg.signing_key).map_err(anyhow::Error::msg)?;
            let signer = NoteSigner::new(&format!("{}/{}", cfg.origin, cfg.node_id), key.clone())?;
            let store = Arc::new(
                RocksStore::open(&cfg.data_dir.join("ledger"))
                    .context("opening the ledger (is the node still running?)")?,
            );
            let started = std::time::Instant::now();
            // Opened (and marked in progress) before the wipe, so the checks of the data
            // directory run on the intact state and a crash from here on is caught at the
            // next start.
            let ledger = Arc::new(Ledger::open(
                store.clone(),
                &cfg.origin,
                &cfg.node_id,
                signer.clone(),
            )?);
            crate::channels::Channels::open_for_reindex(ledger, key.clone())?;
            let wiped = crate::ledger::wipe_derived_state(store.as_ref())?;
            // Reopened on the wiped state: empty consortium caches, no channels yet.
            let ledger = Arc::new(Ledger::open(store, &cfg.origin, &cfg.node_id, signer)?);
            let channels = crate::channels::Channels::open_for_reindex(ledger, key)?;
            let (blocks, leaves) = channels.reindex(|_, _| {})?;
            println!(
                "reindex ok: {blocks} blocks, {leaves} leaves replayed ({wiped} derived entries rebuilt, {} data channels) in {:.1} s",
                channels.names().len(),
                started.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        Command::Pki { command } => {
            pki(command)?;
            Ok(0)
        }
        Command::Backup { config, to } => {
            let cfg = NodeConfig::load(&config)?;
            anyhow::ensure!(
                !to.exists(),
                "{} already exists; a backup goes to a new directory",
                to.display()
            );
            let store = RocksStore::open(&cfg.data_dir.join("ledger"))
                .context("opening the ledger (is the node still running?)")?;
            store.checkpoint_to(&to)?;
            println!(
                "backup written to {}; restore by pointing data_dir/ledger at a copy of it",
                to.display()
            );
            Ok(0)
        }
    }
}
