//! An example supplier ERP connector (docs/API.md, "Supplier collaboration and sync
//! streams").
//!
//! It consumes its organisation's sync stream into a CSV file, one line per event:
//! `cursor,leaf_index,type,record` (the record is the event's JSON, quoted). Before a line
//! is written, the event is verified: its receipt against the profile's trust policy
//! (a quorum of the members' checkpoint keys), that the receipt proves the event's leaf,
//! that the cursor names the position right after that leaf, and for class II records
//! that the salt and payload open the commitment in the proven leaf.
//!
//! The CSV file is also the connector's only state: on start it reads the cursor from the
//! last complete line (a line cut short by a crash is dropped first), so the event and its
//! cursor are stored by one append and the stream resumes after exactly the last stored
//! event. A stream that breaks (a node restarting, a network cut) is reopened from the
//! same place, with a growing pause.

use std::io::{Seek as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use gridledger_client::profile::{Profile, load_policy};
use gridledger_core::receipt::Receipt;
use gridledger_core::supply::SyncCursor;
use gridledger_proto::v1 as pb;

#[derive(Parser)]
#[command(about = "Consume an org's gridledger sync stream into a CSV file, verified.")]
struct Args {
    /// CLI profile of the org's system (e.g. DIR/profiles/sup-alpha.toml).
    #[arg(long, env = "GRIDLEDGER_PROFILE")]
    profile: PathBuf,
    /// The CSV file (created with a header when missing).
    #[arg(long)]
    out: PathBuf,
    /// The org whose stream to read (default: the profile's `org`).
    #[arg(long)]
    org: Option<String>,
    /// Stop after storing this many events in this run.
    #[arg(long)]
    max: Option<u64>,
}

const HEADER: &str = "cursor,leaf_index,type,record";

/// Opens the CSV, dropping a last line cut short by a crash; returns the file (positioned
/// at its end) and the cursor of the last complete line.
fn open_store(path: &Path) -> anyhow::Result<(std::fs::File, String)> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut f, &mut text)?;
    if text.is_empty() {
        writeln!(f, "{HEADER}")?;
        f.sync_all()?;
        return Ok((f, String::new()));
    }
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        // Killed mid-append: that event was not stored, so it will come again.
        f.set_len(complete as u64)?;
        f.sync_all()?;
        text.truncate(complete);
    }
    let last = text.lines().last().unwrap_or(HEADER);
    let cursor = if last == HEADER {
        String::new()
    } else {
        last.split(',').next().unwrap_or_default().to_string()
    };
    f.seek(std::io::SeekFrom::End(0))?;
    Ok((f, cursor))
}

/// Checks one event against the trust policy; returns its CSV line.
fn verify(ev: &pb::SyncEvent, policy: &gridledger_core::trust::Policy) -> anyhow::Result<String> {
    let proven = Receipt::parse(&ev.receipt)
        .context("event receipt")?
        .verify(policy)
        .context("event receipt")?;
    if proven.index != ev.leaf_index {
        bail!(
            "event names leaf {}, its receipt proves leaf {}",
            ev.leaf_index,
            proven.index
        );
    }
    let cursor = SyncCursor::decode(&ev.cursor).map_err(anyhow::Error::msg)?;
    let h = gridledger_core::merkle::leaf_hash(&proven.leaf);
    if cursor.next != ev.leaf_index + 1 || cursor.prev[..] != h[..16] {
        bail!(
            "the cursor of leaf {} does not follow that leaf",
            ev.leaf_index
        );
    }
    if cursor.origin_tag != gridledger_core::supply::origin_tag(policy.origin()) {
        bail!("the cursor belongs to another ledger");
    }
    let (_, body) =
        gridledger_core::tx::decode(&proven.leaf).map_err(|e| anyhow::anyhow!("{e}"))?;
    let payload = body.payload.context("the proven leaf has no payload")?;
    // What is stored must be what the proven leaf says: its identifying fields and, for
    // class II records, the salt and payload that open its commitment and every value
    // shown from them (the client library's row check).
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&ev.json).context("event record")?;
    if !ev.payload.is_empty() {
        fields.insert("salt".into(), hex::encode(&ev.salt).into());
        fields.insert("payload".into(), hex::encode(&ev.payload).into());
    }
    gridledger_client::records::check_matches(&fields, &payload, ev.leaf_index)?;
    let record = ev.json.replace('"', "\"\"");
    Ok(format!(
        "{},{},{},\"{record}\"\n",
        ev.cursor, ev.leaf_index, ev.r#type
    ))
}

/// One connection: reads events until the stream ends or `remaining` reaches 0.
async fn run_once(
    p: &Profile,
    org: &str,
    policy: &gridledger_core::trust::Policy,
    store: &mut std::fs::File,
    cursor: &mut String,
    remaining: &mut Option<u64>,
) -> anyhow::Result<()> {
    let token = gridledger_client::grpc::dynamic_token(p, vec![format!("supply:{org}")]).await?;
    let mut c = pb::supplier_service_client::SupplierServiceClient::new(
        gridledger_client::grpc::channel(p).await?,
    );
    let mut stream = c
        .sync(gridledger_client::grpc::with_bearer(
            pb::SyncRequest {
                cursor: cursor.clone(),
                receipts: true,
                max_events: remaining.map_or(0, |r| r.min(u32::MAX as u64) as u32),
            },
            &token,
        )?)
        .await?
        .into_inner();
    while let Some(ev) = stream.message().await? {
        let line = verify(&ev, policy)?;
        // One append holds the event and its cursor: stored together or not at all.
        store.write_all(line.as_bytes())?;
        store.sync_data()?;
        *cursor = ev.cursor;
        if let Some(r) = remaining {
            *r -= 1;
            if *r == 0 {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether an error is the node or the network going away (retry) rather than a refusal
/// or a verification failure (stop).
fn retryable(e: &anyhow::Error) -> bool {
    use gridledger_client::error::ClientError;
    use tonic::Code;
    let transient = |s: &tonic::Status| {
        matches!(
            s.code(),
            Code::Unavailable
                | Code::Unknown
                | Code::Cancelled
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                // The node is behind the cursor and will catch up.
                | Code::OutOfRange
        )
    };
    match (
        e.downcast_ref::<tonic::Status>(),
        e.downcast_ref::<ClientError>(),
    ) {
        (Some(s), _) | (_, Some(ClientError::Rpc(s))) => transient(s),
        (_, Some(ClientError::Transport(_))) => true,
        _ => false,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let p = Profile::load(&args.profile)?;
    let org = args
        .org
        .or_else(|| p.org.clone())
        .context("pass --org or set org in the profile")?;
    let policy = load_policy(&p.trust)?;
    let (mut store, mut cursor) = open_store(&args.out)?;
    let mut remaining = args.max;
    if remaining == Some(0) {
        return Ok(());
    }
    const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);
    let mut pause = FIRST_PAUSE;
    loop {
        let before = cursor.clone();
        // Re-read on every connection: an operator may have pointed it at another node.
        let p = Profile::load(&args.profile).unwrap_or_else(|_| p.clone());
        match run_once(&p, &org, &policy, &mut store, &mut cursor, &mut remaining).await {
            Ok(()) if remaining == Some(0) => return Ok(()),
            Ok(()) => eprintln!("sync stream ended; reconnecting"),
            Err(e) if retryable(&e) => eprintln!("sync: {e:#}; retrying in {pause:?}"),
            // A refused cursor, a refused grant or a failed verification will not heal
            // by retrying: stop and say why.
            Err(e) => return Err(e),
        }
        // A connection that made progress was a good one: start the pauses over.
        if cursor != before {
            pause = FIRST_PAUSE;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
}
