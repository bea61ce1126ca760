//! The `gridledger` command line. main.rs only parses and calls [`run`].

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Parser, Subcommand};
use gridledger_proto::v1 as pb;

use crate::error::ClientError;
use crate::fetch::GrpcFetcher;
use crate::light::{LightClient, StateStore, verify_channel_receipt_file};
use crate::profile::{Profile, load_channel_policy, load_policy};

/// gridledger client.
#[derive(Debug, Parser)]
#[command(
    name = "gridledger",
    version,
    about = "gridledger light client: verifies everything it is told"
)]
pub struct Cli {
    /// Profile (endpoint, certificates, keys, trust policy).
    #[arg(long, global = true, env = "GRIDLEDGER_PROFILE")]
    pub profile: Option<PathBuf>,
    /// Channel to read (default: the system channel). Its trust policy is derived from
    /// the profile's: origin `<origin>/<channel>`, the same node keys and quorum.
    #[arg(long, global = true, env = "GRIDLEDGER_CHANNEL", default_value = "")]
    pub channel: String,
    /// Command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the node's status.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the latest checkpoint, exactly as signed, after verifying it.
    Checkpoint,
    /// Fetch, verify and write the receipt (C2SP tlog-proof) of a leaf.
    Receipt {
        /// Leaf index.
        #[arg(long)]
        index: u64,
        /// Output file (default: standard output).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Verify a receipt offline against a trust policy.
    Verify {
        /// Receipt file (.tlog-proof).
        file: PathBuf,
        /// Trust policy (JSON).
        #[arg(long)]
        trust: PathBuf,
    },
    /// Print the trust policy (JSON) in force: the profile's (or --trust FILE), derived
    /// for --channel when given, e.g. to hand to an independent verifier.
    Trust {
        /// Trust policy file (default: the profile's).
        #[arg(long)]
        trust: Option<PathBuf>,
    },
    /// Proofs.
    Proof {
        /// Which proof.
        #[command(subcommand)]
        kind: ProofKind,
    },
    /// Consortium changes that need approval: propose, vote.
    Admin {
        /// What to do.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Register or revoke signer and token keys on the ledger.
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Metering records: instruments, readings, traceability (every row verified by
    /// its receipt against the trust policy before it is printed).
    Meter {
        /// What to show.
        #[command(subcommand)]
        command: MeterCommand,
    },
    /// Settlement: readings with proof of valid certification over a period.
    Settlement {
        /// What to check.
        #[command(subcommand)]
        command: SettlementCommand,
    },
    /// An institution's public credit view (qualifications, equipment, certificates).
    Institution {
        /// Institution org id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Class III documents: upload with a signed anchor, download verified.
    Document {
        /// What to do.
        #[command(subcommand)]
        command: DocumentCommand,
    },
    /// Purge the payload of a class II record (retention): the leaf and its commitment
    /// stay, reads say it was purged. The record owner's admin key or the regulator's.
    Purge {
        /// The record's commitment, hex (the `commitment` of its leaf).
        #[arg(long)]
        commitment: String,
        /// Why (kept on the ledger).
        #[arg(long)]
        reason: String,
    },
    /// Bind a meter to a customer (DOMAIN.md §2.3): who and where, class II. Signed with
    /// the profile's key (the owning grid company's operator or admin); the payload is
    /// committed to in the leaf and sealed by the node. A meter that already has a
    /// binding gets this one as its replacement (move-out, move-in).
    Bind {
        /// Asset number.
        asset: String,
        /// The customer's account (the resident's user name); omit for a vacancy.
        #[arg(long, default_value = "")]
        account: String,
        /// The installation point: a metering point id or an address.
        #[arg(long)]
        point: String,
        /// First day of the binding, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// The class II collection that holds the payload.
        #[arg(long, default_value = "bindings")]
        collection: String,
        /// The leaf of the binding this one replaces (default: the meter's current one,
        /// looked up with a dynamic token).
        #[arg(long)]
        replaces: Option<u64>,
        /// This is the meter's first binding: do not look one up.
        #[arg(long, conflicts_with = "replaces")]
        first: bool,
    },
    /// Supplier collaboration: demand plans, acknowledgements, factory test batches.
    Supplier {
        /// What to do.
        #[command(subcommand)]
        command: SupplierCommand,
    },
    /// The profile org's sync stream: each event it may see as one JSON line (`cursor`,
    /// `type`, `leaf_index`, `record`), in log order, then new ones as they commit.
    Sync {
        /// Resume from the cursor in this file when it exists, and write each printed
        /// event's cursor to it (atomically) before reading the next.
        #[arg(long)]
        cursor_file: Option<PathBuf>,
        /// Stop after this many events.
        #[arg(long)]
        max: Option<u32>,
        /// The org whose stream to read (default: the profile's `org`).
        #[arg(long)]
        org: Option<String>,
        /// Attach each event's receipt.
        #[arg(long)]
        receipts: bool,
    },
    /// Verification plans and their status today.
    Plans {
        /// Only this status: done, overdue, due or open.
        #[arg(long, default_value = "")]
        status: String,
        /// Only plans of this subject (asset, equipment or org id).
        #[arg(long, default_value = "")]
        subject: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Submit N valid signed demo transactions and report throughput and latency.
    Load {
        /// Transactions.
        #[arg(long)]
        count: usize,
        /// Unary: requests in flight; stream: parallel streams.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Use the SubmitStream bulk call.
        #[arg(long)]
        stream: bool,
        /// Stream mode: transactions per SubmitStream call.
        #[arg(long, default_value_t = 5000)]
        chunk: usize,
        /// Unary, open loop: send at this many tx/s regardless of replies.
        #[arg(long)]
        rate: Option<f64>,
        /// Org owning the instruments registered (the signing key's org).
        #[arg(long, default_value = "grid-north")]
        org: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Supplier commands (signed with the profile's key).
#[derive(Debug, Subcommand)]
pub enum SupplierCommand {
    /// Publish a demand plan (a grid company): quantity of one type and class in a month,
    /// addressed to one or more suppliers.
    Demand {
        /// A supplier org it is addressed to (repeat for several).
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// meter, current-transformer (ct) or voltage-transformer (vt).
        #[arg(long = "type")]
        kind: String,
        /// Accuracy class, e.g. 1 or 0.5S.
        #[arg(long)]
        class: String,
        /// YYYY-MM.
        #[arg(long)]
        month: String,
        /// How many.
        #[arg(long)]
        quantity: u32,
        /// Plan id (default: DP-<org>-<random>).
        #[arg(long)]
        id: Option<String>,
        /// Free-text notes.
        #[arg(long, default_value = "")]
        notes: String,
        /// The class II collection.
        #[arg(long, default_value = "supply")]
        collection: String,
    },
    /// Acknowledge a demand plan addressed to the profile's org (a supplier) with a
    /// production plan and delivery dates from a JSON file.
    Ack {
        /// The demand plan id.
        #[arg(long)]
        demand: String,
        /// `{"production_plan": "...", "deliveries": [{"type", "accuracy_class",
        /// "quantity", "date"}]}`.
        #[arg(long)]
        plan: PathBuf,
        /// Revise the org's acknowledgement at this leaf.
        #[arg(long)]
        revises: Option<u64>,
        /// The class II collection.
        #[arg(long, default_value = "supply")]
        collection: String,
    },
    /// Publish a factory test batch (a supplier) from a CSV or JSON file of
    /// per-instrument results.
    Batch {
        /// CSV (`asset_no,test_date,passed,errors`) or JSON (by extension).
        #[arg(long)]
        file: PathBuf,
        /// Batch id (default: FTB- and the first 16 hex digits of the SHA-256 of the
        /// encoded results, so publishing the same results twice is refused as a
        /// duplicate).
        #[arg(long)]
        id: Option<String>,
        /// The buying grid company (default: the owner of the first instrument).
        #[arg(long)]
        buyer: Option<String>,
        /// The class II collection.
        #[arg(long, default_value = "supply")]
        collection: String,
    },
    /// Register a model the profile's org makes.
    Model {
        /// Model id.
        model: String,
        /// meter, current-transformer (ct) or voltage-transformer (vt).
        #[arg(long = "type")]
        kind: String,
        /// Accuracy class.
        #[arg(long)]
        class: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// The demand plans (with acknowledgements) the profile's org may see, verified.
    Plans {
        /// Only this plan.
        #[arg(long, default_value = "")]
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Registered models (class I), verified.
    Models {
        /// Only this supplier's.
        #[arg(long, default_value = "")]
        supplier: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The factory test batches the profile's org made or bought, verified.
    Batches {
        /// Only this batch.
        #[arg(long, default_value = "")]
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Document commands.
#[derive(Debug, Subcommand)]
pub enum DocumentCommand {
    /// Upload a file: its SHA-256, MD5 and size are anchored on the ledger, signed with
    /// the profile's key; the node checks the bytes against the anchor as they stream.
    Put {
        /// The file.
        file: PathBuf,
        /// What it is about: an asset number, certificate number or org id.
        #[arg(long)]
        subject: String,
        /// Media type.
        #[arg(long, default_value = "application/pdf")]
        media_type: String,
    },
    /// Print the signed anchor of a file (base64 of the encoded SignedTx), for an upload
    /// by other means: `curl -H "x-gridledger-anchor: $(gridledger document anchor F
    /// --subject S)" --data-binary @F .../v1/documents`.
    Anchor {
        /// The file.
        file: PathBuf,
        /// What it is about: an asset number, certificate number or org id.
        #[arg(long)]
        subject: String,
        /// Media type.
        #[arg(long, default_value = "application/pdf")]
        media_type: String,
    },
    /// Download a document, verified: the anchor's receipt against the trust policy, the
    /// bytes against the proven size, SHA-256 and MD5. The file appears only if all hold.
    Get {
        /// SHA-256, hex.
        sha256: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Meter commands.
#[derive(Debug, Subcommand)]
pub enum MeterCommand {
    /// The instrument, its certificates and the current one.
    Show {
        /// Asset number.
        asset: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Daily readings over a period (at most 366 days).
    Readings {
        /// Asset number.
        asset: String,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The meter's customer bindings and installation points (class II; read with a
    /// dynamic token for `binding:<asset>`).
    Binding {
        /// Asset number.
        asset: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The traceability chain behind the current certificate, up to a national standard.
    Trace {
        /// Asset number.
        asset: String,
        /// Evaluate the chain on this day (default: the certificate's test date).
        #[arg(long, default_value = "")]
        date: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Settlement commands.
#[derive(Debug, Subcommand)]
pub enum SettlementCommand {
    /// Readings of a meter over a period and whether valid certificates cover it.
    Check {
        /// Asset number.
        #[arg(long)]
        meter: String,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Key registration commands (transactions signed with the profile's key, which must
/// be an admin of the org or the regulator).
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Register an Ed25519 public key for an org, with roles. For a node's token key
    /// (printed by `gridledger-node token-keys`), use `--role token-issuer` alone.
    Register {
        /// The public key, 64 hex characters.
        #[arg(long)]
        public_key: String,
        /// The org it belongs to.
        #[arg(long)]
        org: String,
        /// A role (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// A label for people reading the ledger.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a registered key: transactions it signs and tokens it signed stop working.
    Revoke {
        /// The public key, 64 hex characters.
        #[arg(long)]
        public_key: String,
        /// Why (kept on the ledger).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// Consortium views (AdminService reads).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AdminView {
    /// Member orgs and their kinds.
    Members,
    /// Raft members and registered nodes, with their validity.
    Nodes,
    /// Proposals and their votes.
    Proposals,
    /// Channels (sizes only of channels the caller may read).
    Channels,
    /// Class II collection definitions.
    Collections,
    /// The system origin and the approval policy.
    Config,
}

/// Consortium administration (transactions signed with the profile's key: an org admin
/// or the regulator). A proposal is approved by the regulator's vote or by a majority of
/// member orgs; an approved node is added to the Raft cluster by the leader.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show the consortium as the ledger and the cluster record it.
    Show {
        /// What to show.
        #[arg(value_enum)]
        what: AdminView,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Propose adding a member node.
    ProposeAddNode {
        /// Proposal id (no whitespace or ':').
        #[arg(long)]
        proposal: String,
        /// The node's Raft id.
        #[arg(long)]
        raft_id: u64,
        /// The node's id (its node_id).
        #[arg(long)]
        node_id: String,
        /// The org operating it.
        #[arg(long)]
        org: String,
        /// Its peer port address, host:port.
        #[arg(long)]
        peer: String,
        /// Its API address, host:port.
        #[arg(long)]
        api: String,
        /// Its checkpoint verifier key.
        #[arg(long)]
        checkpoint_key: String,
        /// First day the registration is valid (YYYY-MM-DD; default: on approval).
        #[arg(long, default_value = "")]
        valid_from: String,
        /// Last day the registration is valid (YYYY-MM-DD; default: open-ended).
        #[arg(long, default_value = "")]
        valid_until: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Propose admitting a member org.
    ProposeAddOrg {
        /// Proposal id.
        #[arg(long)]
        proposal: String,
        /// Org id.
        #[arg(long)]
        org: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// regulator, grid-company, institution, supplier or market-operator.
        #[arg(long)]
        kind: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Propose a channel (a separate log, origin `<origin>/<name>`) for some orgs.
    ProposeChannel {
        /// Proposal id.
        #[arg(long)]
        proposal: String,
        /// Channel name.
        #[arg(long)]
        name: String,
        /// Member orgs (repeat).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Propose (re)defining a collection: which orgs may read which class II records.
    ProposeCollection {
        /// Proposal id.
        #[arg(long)]
        proposal: String,
        /// Collection name.
        #[arg(long)]
        name: String,
        /// Member orgs (repeat).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// Record types (repeat), e.g. reading, demand_plan.
        #[arg(long = "record-type", required = true)]
        record_types: Vec<String>,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Propose a new approval policy: regulator-or-majority, regulator or majority.
    ProposePolicy {
        /// Proposal id.
        #[arg(long)]
        proposal: String,
        /// The policy.
        #[arg(long)]
        policy: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Propose removing a member node.
    ProposeRemoveNode {
        /// Proposal id.
        #[arg(long)]
        proposal: String,
        /// The node's Raft id.
        #[arg(long)]
        raft_id: u64,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Vote on a proposal (one vote per org).
    Vote {
        /// Proposal id.
        #[arg(long)]
        proposal: String,
        /// Approve.
        #[arg(long)]
        approve: bool,
        /// Refuse.
        #[arg(long)]
        deny: bool,
    },
}

/// Proof commands.
#[derive(Debug, Subcommand)]
pub enum ProofKind {
    /// Print a verified consistency proof (base64 hashes, one per line).
    Consistency {
        /// Old tree size.
        #[arg(long)]
        from: u64,
        /// New tree size (default: the latest checkpoint).
        #[arg(long, default_value_t = 0)]
        to: u64,
    },
}

fn profile(cli_profile: &Option<PathBuf>) -> Result<Profile, ClientError> {
    let p = cli_profile.as_ref().ok_or_else(|| {
        ClientError::Config("no profile: pass --profile FILE or set GRIDLEDGER_PROFILE".into())
    })?;
    Profile::load(p)
}

async fn light(p: &Profile, channel: &str) -> Result<LightClient<GrpcFetcher>, ClientError> {
    let policy = load_channel_policy(&p.trust, channel)?;
    let client = crate::grpc::connect(p).await?;
    Ok(LightClient::new(
        policy,
        GrpcFetcher {
            client,
            channel: channel.to_string(),
        },
        StateStore::new(&p.state_dir),
    ))
}

/// Runs a command; returns the exit code (0 ok, 1 does not verify, 2 other failure).
pub async fn run(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_verification_failure() { 1 } else { 2 }
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), ClientError> {
    match cli.command {
        Command::Verify { file, trust } => {
            let v = verify_channel_receipt_file(&file, &trust, &cli.channel)?;
            let kind = gridledger_core::tx::decode(&v.leaf)
                .map(|(_, b)| gridledger_core::tx::payload_kind(&b))
                .unwrap_or("undecodable");
            let cp = &v.checkpoint.checkpoint;
            println!(
                "OK: leaf {} ({kind}, sha256 {}) is in {} at tree size {} (root {}), signed by {}",
                v.index,
                hex::encode(sha2_digest(&v.leaf)),
                cp.origin,
                cp.size,
                B64.encode(cp.root),
                v.checkpoint.signers.join(", ")
            );
            Ok(())
        }
        Command::Trust { trust } => {
            let path = match trust {
                Some(t) => t,
                None => profile(&cli.profile)?.trust,
            };
            let s =
                crate::profile::read_bounded(&path, crate::profile::MAX_TRUST_BYTES, "trust file")?;
            let mut policy = gridledger_core::trust::TrustPolicy::from_json(&s)?;
            if !cli.channel.is_empty() {
                policy = policy.for_channel(&cli.channel)?;
            }
            policy.compile()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&policy)
                    .map_err(|e| ClientError::Config(e.to_string()))?
            );
            Ok(())
        }
        Command::Status { json } => {
            let p = profile(&cli.profile)?;
            let mut c = crate::grpc::connect(&p).await?;
            let s = c
                .get_status(pb::GetStatusRequest {
                    channel: cli.channel.clone(),
                })
                .await?
                .into_inner();
            if json {
                let counts: serde_json::Map<String, serde_json::Value> = s
                    .tx_counts
                    .iter()
                    .map(|c| (c.kind.clone(), c.count.into()))
                    .collect();
                let v = serde_json::json!({
                    "origin": s.origin, "tree_size": s.tree_size, "height": s.height,
                    "root": hex::encode(&s.root), "node_id": s.node_id, "total_tx": s.total_tx, "tx_counts": counts,
                    "leader_id": (!s.leader_id.is_empty()).then_some(&s.leader_id),
                });
                println!("{v}");
            } else {
                println!(
                    "origin:    {}\nnode:      {}\nheight:    {}\ntree size: {}\nroot:      {}",
                    s.origin,
                    s.node_id,
                    s.height,
                    s.tree_size,
                    hex::encode(&s.root)
                );
                for c in &s.tx_counts {
                    println!("  {:<22} {}", c.kind, c.count);
                }
            }
            Ok(())
        }
        Command::Checkpoint => {
            let p = profile(&cli.profile)?;
            let u = light(&p, &cli.channel).await?.update().await?;
            print!("{}", u.served.note);
            if u.stale {
                eprintln!(
                    "warning: this checkpoint is older than one verified before (size {})",
                    u.trusted.checkpoint.size
                );
            }
            Ok(())
        }
        Command::Receipt { index, output } => {
            let p = profile(&cli.profile)?;
            let (text, _) = light(&p, &cli.channel).await?.receipt(index).await?;
            match output {
                None => print!("{text}"),
                Some(path) => {
                    let tmp = path.with_extension("tmp");
                    std::fs::write(&tmp, &text)
                        .and_then(|_| std::fs::rename(&tmp, &path))
                        .map_err(|e| {
                            ClientError::Config(format!("cannot write {}: {e}", path.display()))
                        })?;
                    eprintln!(
                        "receipt for leaf {index} verified and written to {}",
                        path.display()
                    );
                }
            }
            Ok(())
        }
        Command::Proof {
            kind: ProofKind::Consistency { from, to },
        } => {
            let p = profile(&cli.profile)?;
            let (_, _, path) = light(&p, &cli.channel).await?.consistency(from, to).await?;
            for h in path {
                println!("{}", B64.encode(h));
            }
            Ok(())
        }
        Command::Keys { command } => {
            use gridledger_core::pb::tx_body::Payload;
            let p = profile(&cli.profile)?;
            let parse_key = |h: &str| -> Result<Vec<u8>, ClientError> {
                hex::decode(h)
                    .ok()
                    .filter(|k| k.len() == 32)
                    .ok_or_else(|| {
                        ClientError::Config(format!(
                            "--public-key {h:?}: expected 64 hex characters"
                        ))
                    })
            };
            let payload = match command {
                KeysCommand::Register {
                    public_key,
                    org,
                    roles,
                    label,
                } => Payload::RegisterSigner(gridledger_core::pb::RegisterSigner {
                    public_key: parse_key(&public_key)?,
                    org_id: org,
                    roles,
                    label,
                }),
                KeysCommand::Revoke { public_key, reason } => {
                    Payload::RevokeSigner(gridledger_core::pb::RevokeSigner {
                        public_key: parse_key(&public_key)?,
                        reason,
                    })
                }
            };
            submit_payload(&p, payload).await
        }
        Command::Admin { command } => {
            use gridledger_core::pb::tx_body::Payload;
            use gridledger_core::pb::{
                AddNode, CastVote, ProposeChange, RemoveNode, propose_change::Change,
            };
            let p = profile(&cli.profile)?;
            let payload = match command {
                AdminCommand::Show { what, json } => return admin_show(&p, what, json).await,
                AdminCommand::ProposeAddNode {
                    proposal,
                    raft_id,
                    node_id,
                    org,
                    peer,
                    api,
                    checkpoint_key,
                    valid_from,
                    valid_until,
                    reason,
                } => Payload::ProposeChange(ProposeChange {
                    proposal_id: proposal,
                    reason,
                    change: Some(Change::AddNode(AddNode {
                        raft_id,
                        node_id,
                        org_id: org,
                        peer,
                        api,
                        checkpoint_key,
                        valid_from,
                        valid_until,
                    })),
                }),
                AdminCommand::ProposeAddOrg {
                    proposal,
                    org,
                    name,
                    kind,
                    reason,
                } => {
                    let k = gridledger_core::pb::OrgKind::from_str_name(&format!(
                        "ORG_KIND_{}",
                        kind.to_uppercase().replace('-', "_")
                    ))
                    .filter(|k| *k != gridledger_core::pb::OrgKind::Unspecified)
                    .ok_or_else(|| {
                        ClientError::Config(format!(
                            "--kind {kind:?}: one of regulator, grid-company, institution, supplier, market-operator"
                        ))
                    })?;
                    Payload::ProposeChange(ProposeChange {
                        proposal_id: proposal,
                        reason,
                        change: Some(Change::AddOrg(gridledger_core::pb::RegisterOrg {
                            org_id: org,
                            name,
                            kind: k as i32,
                        })),
                    })
                }
                AdminCommand::ProposeChannel {
                    proposal,
                    name,
                    members,
                    reason,
                } => Payload::ProposeChange(ProposeChange {
                    proposal_id: proposal,
                    reason,
                    change: Some(Change::CreateChannel(gridledger_core::pb::CreateChannel {
                        name,
                        member_orgs: members,
                    })),
                }),
                AdminCommand::ProposeCollection {
                    proposal,
                    name,
                    members,
                    record_types,
                    reason,
                } => Payload::ProposeChange(ProposeChange {
                    proposal_id: proposal,
                    reason,
                    change: Some(Change::DefineCollection(
                        gridledger_core::pb::DefineCollection {
                            name,
                            member_orgs: members,
                            record_types,
                        },
                    )),
                }),
                AdminCommand::ProposePolicy {
                    proposal,
                    policy,
                    reason,
                } => {
                    use gridledger_core::pb::ApprovalPolicy as P;
                    let policy = match policy.as_str() {
                        "regulator-or-majority" => P::RegulatorOrMajority,
                        "regulator" => P::Regulator,
                        "majority" => P::Majority,
                        other => {
                            return Err(ClientError::Config(format!(
                                "--policy {other:?}: one of regulator-or-majority, regulator, majority"
                            )));
                        }
                    };
                    Payload::ProposeChange(ProposeChange {
                        proposal_id: proposal,
                        reason,
                        change: Some(Change::SetApprovalPolicy(
                            gridledger_core::pb::SetApprovalPolicy {
                                policy: policy as i32,
                            },
                        )),
                    })
                }
                AdminCommand::ProposeRemoveNode {
                    proposal,
                    raft_id,
                    reason,
                } => Payload::ProposeChange(ProposeChange {
                    proposal_id: proposal,
                    reason,
                    change: Some(Change::RemoveNode(RemoveNode { raft_id })),
                }),
                AdminCommand::Vote {
                    proposal,
                    approve,
                    deny,
                } => {
                    if approve == deny {
                        return Err(ClientError::Config(
                            "vote: pass exactly one of --approve or --deny".into(),
                        ));
                    }
                    Payload::CastVote(CastVote {
                        proposal_id: proposal,
                        approve,
                    })
                }
            };
            submit_payload(&p, payload).await
        }
        Command::Meter { command } => {
            let p = profile(&cli.profile)?;
            let mut c = data_client(&p).await?;
            // Every instrument, certificate and reading row must be about this asset.
            let query = crate::records::Query {
                asset: Some(match &command {
                    MeterCommand::Show { asset, .. }
                    | MeterCommand::Readings { asset, .. }
                    | MeterCommand::Binding { asset, .. }
                    | MeterCommand::Trace { asset, .. } => asset.clone(),
                }),
                period: None,
            };
            let (view, json) = match command {
                MeterCommand::Show { asset, json } => (
                    c.get_instrument(pb::RecordQuery {
                        id: asset,
                        receipts: true,
                        date: String::new(),
                    })
                    .await?,
                    json,
                ),
                MeterCommand::Readings {
                    asset,
                    from,
                    to,
                    json,
                } => {
                    // Readings as a view: the settlement check carries them with
                    // receipts; print only the readings table. Class II: read with a
                    // dynamic token the policy grants for exactly this meter and period.
                    let token = crate::grpc::dynamic_token(
                        &p,
                        vec![format!("readings:{asset}:{from}:{to}")],
                    )
                    .await?;
                    let v = c
                        .settlement_check(crate::grpc::with_bearer(
                            pb::SettlementRequest {
                                asset_no: asset.clone(),
                                from: from.clone(),
                                to: to.clone(),
                                receipts: true,
                            },
                            &token,
                        )?)
                        .await?;
                    let mut v = v.into_inner();
                    v.title = format!("readings of {asset} from {from} to {to}");
                    v.tables.retain(|t| t.name == "readings");
                    v.summary
                        .retain(|f| f.name != "certified_throughout" && f.name != "uncovered");
                    (tonic::Response::new(v), json)
                }
                MeterCommand::Binding { asset, json } => {
                    (tonic::Response::new(bindings_view(&p, &asset).await?), json)
                }
                MeterCommand::Trace { asset, date, json } => (
                    c.get_traceability(pb::RecordQuery {
                        id: asset,
                        receipts: true,
                        date,
                    })
                    .await?,
                    json,
                ),
            };
            print_verified(&p, &view.into_inner(), json, &query)
        }
        Command::Settlement {
            command:
                SettlementCommand::Check {
                    meter,
                    from,
                    to,
                    json,
                },
        } => {
            let p = profile(&cli.profile)?;
            let query = crate::records::Query {
                asset: Some(meter.clone()),
                period: Some((from.clone(), to.clone())),
            };
            let token =
                crate::grpc::dynamic_token(&p, vec![format!("readings:{meter}:{from}:{to}")])
                    .await?;
            let v = data_client(&p)
                .await?
                .settlement_check(crate::grpc::with_bearer(
                    pb::SettlementRequest {
                        asset_no: meter,
                        from,
                        to,
                        receipts: true,
                    },
                    &token,
                )?)
                .await?;
            print_verified(&p, &v.into_inner(), json, &query)
        }
        Command::Bind {
            asset,
            account,
            point,
            from,
            collection,
            replaces,
            first,
        } => {
            use gridledger_core::pb::tx_body::Payload;
            use gridledger_core::pb::{BindCustomer, CustomerBinding};
            let p = profile(&cli.profile)?;
            let replaces = match (replaces, first) {
                (Some(r), _) => Some(r),
                (None, true) => None,
                (None, false) => {
                    let v = bindings_view(&p, &asset).await?;
                    v.summary
                        .iter()
                        .find(|f| f.name == "current")
                        .and_then(|f| serde_json::from_str::<Option<u64>>(&f.json).ok())
                        .flatten()
                }
            };
            let value = prost::Message::encode_to_vec(&CustomerBinding {
                account,
                installation_point: point,
                from,
            });
            // Checked here too, so a typo is named before anything is signed.
            gridledger_core::private::decode_binding(&value).map_err(ClientError::Config)?;
            let salt: [u8; 32] = rand::random();
            let commitment = gridledger_core::private::commitment(&salt, &value);
            submit_private(
                &p,
                Payload::BindCustomer(BindCustomer {
                    asset_no: asset,
                    commitment: commitment.to_vec(),
                    collection,
                    replaces,
                }),
                pb::PrivatePayload {
                    salt: salt.to_vec(),
                    payload: value,
                },
            )
            .await?;
            println!("commitment: {}", hex::encode(commitment));
            Ok(())
        }
        Command::Supplier { command } => {
            let p = profile(&cli.profile)?;
            crate::supplier::run(&p, command).await
        }
        Command::Sync {
            cursor_file,
            max,
            org,
            receipts,
        } => {
            let p = profile(&cli.profile)?;
            crate::supplier::sync(&p, org, cursor_file.as_deref(), max, receipts).await
        }
        Command::Institution { id, json } => {
            let p = profile(&cli.profile)?;
            let v = data_client(&p)
                .await?
                .get_institution(pb::RecordQuery {
                    id,
                    receipts: true,
                    date: String::new(),
                })
                .await?;
            print_verified(&p, &v.into_inner(), json, &Default::default())
        }
        Command::Document { command } => {
            let p = profile(&cli.profile)?;
            match command {
                DocumentCommand::Put {
                    file,
                    subject,
                    media_type,
                } => {
                    let d = crate::documents::upload(&p, &file, &subject, &media_type).await?;
                    println!(
                        "anchored: leaf {} sha256 {} md5 {} size {}",
                        d.leaf_index, d.sha256, d.md5, d.size
                    );
                }
                DocumentCommand::Anchor {
                    file,
                    subject,
                    media_type,
                } => {
                    let signed = crate::documents::signed_anchor(&p, &file, &subject, &media_type)?;
                    println!("{}", B64.encode(signed));
                }
                DocumentCommand::Get { sha256, out, json } => {
                    let policy = load_policy(&p.trust)?;
                    let (a, leaf) = crate::documents::download(&p, &policy, &sha256, &out).await?;
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "verified": true, "leaf_index": leaf, "sha256": a.sha256,
                                "md5": a.md5, "size": a.size, "media_type": a.media_type,
                                "file_name": a.file_name, "subject": a.subject,
                                "out": out.display().to_string(),
                            })
                        );
                    } else {
                        println!(
                            "verified: {} ({} bytes, {}) anchored at leaf {leaf}; SHA-256 and MD5 match; written to {}",
                            a.file_name,
                            a.size,
                            a.media_type,
                            out.display()
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Purge { commitment, reason } => {
            let p = profile(&cli.profile)?;
            let commitment = hex::decode(&commitment)
                .ok()
                .filter(|c| c.len() == 32)
                .ok_or_else(|| ClientError::Config("--commitment must be 64 hex digits".into()))?;
            submit_payload(
                &p,
                gridledger_core::pb::tx_body::Payload::PurgePrivate(
                    gridledger_core::pb::PurgePrivate { commitment, reason },
                ),
            )
            .await
        }
        Command::Plans {
            status,
            subject,
            json,
        } => {
            let p = profile(&cli.profile)?;
            let v = data_client(&p)
                .await?
                .list_plans(pb::PlansRequest {
                    status,
                    subject_id: subject,
                    receipts: true,
                })
                .await?;
            print_verified(&p, &v.into_inner(), json, &Default::default())
        }
        Command::Load {
            count,
            concurrency,
            stream,
            chunk,
            rate,
            org,
            json,
        } => {
            let p = profile(&cli.profile)?;
            let key = p.signing_key()?;
            let policy = load_policy(&p.trust)?;
            let client = crate::grpc::connect_leader(&p).await?;
            let opts = crate::load::LoadOptions {
                count,
                concurrency,
                stream,
                chunk,
                rate,
                org,
                origin: policy.origin().to_string(),
            };
            let r = crate::load::run(client, &key, &opts).await?;
            if json {
                println!("{}", serde_json::to_string(&r).expect("plain struct"));
            } else {
                println!(
                    "{} mode, {} submitted, {} committed, {} rejected in {:.2}s: {:.0} tx/s, p50 {:.2} ms, p99 {:.2} ms",
                    r.mode,
                    r.submitted,
                    r.committed,
                    r.rejected,
                    r.seconds,
                    r.tx_per_s,
                    r.p50_ms,
                    r.p99_ms
                );
            }
            Ok(())
        }
    }
}

async fn data_client(
    p: &Profile,
) -> Result<pb::data_service_client::DataServiceClient<tonic::transport::Channel>, ClientError> {
    Ok(
        pb::data_service_client::DataServiceClient::new(crate::grpc::channel(p).await?)
            .max_decoding_message_size(crate::grpc::MAX_RESPONSE_BYTES),
    )
}

/// Verifies every row of a view against the profile's trust policy, then prints it:
/// the summary and one table per record table (with each row's leaf), or JSON.
pub(crate) fn print_verified(
    p: &Profile,
    view: &pb::DataView,
    json: bool,
    query: &crate::records::Query,
) -> Result<(), ClientError> {
    let policy = load_policy(&p.trust)?;
    let v = crate::records::verify_view(view, &policy, query)?;
    if json {
        let rows: Vec<serde_json::Value> = v
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({"table": r.table, "leaf_index": r.leaf_index, "record": r.fields})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"title": v.title, "summary": v.summary, "rows": rows, "verified": true})
        );
        return Ok(());
    }
    println!("{}", v.title);
    for (k, val) in &v.summary {
        println!("  {k}: {val}");
    }
    for t in &view.tables {
        println!("\n{} ({}; class {}):", t.name, t.description, t.data_class);
        // Interval lists, and a class II row's salt and payload (already checked against
        // the leaf's commitment), are too long for a terminal; --json has them.
        let mut columns: Vec<String> = t
            .columns
            .iter()
            .filter(|c| {
                !c.field.ends_with("intervals_wh") && c.field != "salt" && c.field != "payload"
            })
            .map(|c| c.field.clone())
            .collect();
        columns.push("leaf".into());
        let rows: Vec<serde_json::Value> = v
            .rows
            .iter()
            .filter(|r| r.table == t.name)
            .map(|r| {
                let mut o = r.fields.clone();
                o.insert("leaf".into(), r.leaf_index.into());
                serde_json::Value::Object(o)
            })
            .collect();
        print!("{}", crate::table::render_columns(&columns, &rows));
    }
    eprintln!(
        "{} rows verified against {} (quorum {})",
        v.rows.len(),
        policy.origin(),
        policy.quorum()
    );
    Ok(())
}

/// Prints one AdminService view, as JSON or as a table.
async fn admin_show(p: &Profile, what: AdminView, json: bool) -> Result<(), ClientError> {
    use pb::admin_service_client::AdminServiceClient;
    fn value(v: impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(v).expect("plain message")
    }
    let mut c = AdminServiceClient::new(crate::grpc::channel(p).await?)
        .max_decoding_message_size(crate::grpc::MAX_RESPONSE_BYTES);
    // The whole response for --json; the rows for the table.
    let (whole, rows) = match what {
        AdminView::Members => {
            let r = c
                .list_members(pb::ListMembersRequest {})
                .await?
                .into_inner();
            (value(&r), value(&r.members))
        }
        AdminView::Nodes => {
            let r = c.list_nodes(pb::ListNodesRequest {}).await?.into_inner();
            (value(&r), value(&r.nodes))
        }
        AdminView::Proposals => {
            let r = c
                .list_proposals(pb::ListProposalsRequest {})
                .await?
                .into_inner();
            (value(&r), value(&r.proposals))
        }
        AdminView::Channels => {
            let r = c
                .list_channels(pb::ListChannelsRequest {})
                .await?
                .into_inner();
            (value(&r), value(&r.channels))
        }
        AdminView::Collections => {
            let r = c
                .list_collections(pb::ListCollectionsRequest {})
                .await?
                .into_inner();
            (value(&r), value(&r.collections))
        }
        AdminView::Config => {
            let r = c.get_config(pb::GetConfigRequest {}).await?.into_inner();
            (value(&r), serde_json::Value::Array(vec![value(&r)]))
        }
    };
    if json {
        println!("{whole}");
    } else {
        let rows = rows.as_array().cloned().unwrap_or_default();
        print!("{}", crate::table::render(&rows));
    }
    Ok(())
}

/// A meter's customer bindings with receipts, read with a single-use dynamic token for
/// `binding:<asset>` that the profile's certificate obtains first.
async fn bindings_view(p: &Profile, asset: &str) -> Result<pb::DataView, ClientError> {
    let token = crate::grpc::dynamic_token(p, vec![format!("binding:{asset}")]).await?;
    Ok(data_client(p)
        .await?
        .get_bindings(crate::grpc::with_bearer(
            pb::RecordQuery {
                id: asset.to_string(),
                receipts: true,
                date: String::new(),
            },
            &token,
        )?)
        .await?
        .into_inner())
}

/// Signs a class II payload's transaction with the profile's key and submits it with
/// its salt and payload to the leader.
async fn submit_private(
    p: &Profile,
    payload: gridledger_core::pb::tx_body::Payload,
    private: pb::PrivatePayload,
) -> Result<(), ClientError> {
    let tx = p.sign(payload)?;
    let mut c = crate::grpc::connect_leader(p).await?;
    let r = c
        .submit(pb::SubmitRequest {
            private_payload: Some(private),
            signed_tx: prost::Message::encode_to_vec(&tx).into(),
        })
        .await?
        .into_inner();
    println!(
        "committed: leaf {} in block {}",
        r.leaf_index, r.block_height
    );
    Ok(())
}

/// Signs a payload with the profile's key and submits it to the leader.
async fn submit_payload(
    p: &Profile,
    payload: gridledger_core::pb::tx_body::Payload,
) -> Result<(), ClientError> {
    let tx = p.sign(payload)?;
    let mut c = crate::grpc::connect_leader(p).await?;
    let r = c
        .submit(pb::SubmitRequest {
            private_payload: None,
            signed_tx: prost::Message::encode_to_vec(&tx).into(),
        })
        .await?
        .into_inner();
    println!(
        "committed: leaf {} in block {}",
        r.leaf_index, r.block_height
    );
    Ok(())
}

fn sha2_digest(b: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(b).into()
}
