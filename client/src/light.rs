//! The light client: trusts a policy, not a server.
//!
//! It verifies every checkpoint against the trust policy, persists the largest verified
//! checkpoint per origin, demands a consistency proof from it for every newer one, and
//! reports a fork with its evidence (both signed checkpoints and the proof) instead of
//! ever accepting it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gridledger_core::merkle::{self, Hash};
use gridledger_core::receipt::{Receipt, VerifiedReceipt};
use gridledger_core::trust::{Policy, VerifiedCheckpoint};
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::fetch::Fetcher;

/// Evidence of a fork: two checkpoints, each meeting the policy, that no append-only log
/// can both have produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForkEvidence {
    /// The checkpoint the client had verified before.
    pub trusted_note: String,
    /// The conflicting checkpoint.
    pub conflicting_note: String,
    /// The consistency proof the server gave (base64), if any.
    pub proof: Vec<String>,
    /// Why they conflict.
    pub reason: String,
}

impl ForkEvidence {
    /// One line.
    pub fn summary(&self) -> String {
        self.reason.clone()
    }
}

/// Where the largest verified checkpoint per origin is kept.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// State in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, origin: &str) -> PathBuf {
        let safe: String = origin
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{safe}.checkpoint"))
    }

    /// The stored note for an origin.
    ///
    /// # Errors
    /// [`ClientError::State`] on I/O errors.
    pub fn load(&self, origin: &str) -> Result<Option<String>, ClientError> {
        match std::fs::read_to_string(self.path(origin)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::State(e.to_string())),
        }
    }

    /// Stores a note atomically (write, fsync, rename), so a crash never leaves a torn
    /// or empty state file.
    ///
    /// # Errors
    /// [`ClientError::State`] on I/O errors.
    pub fn store(&self, origin: &str, note: &str) -> Result<(), ClientError> {
        let st = |e: std::io::Error| ClientError::State(e.to_string());
        std::fs::create_dir_all(&self.dir).map_err(st)?;
        let path = self.path(origin);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(st)?;
        f.write_all(note.as_bytes()).map_err(st)?;
        f.sync_all().map_err(st)?;
        std::fs::rename(&tmp, &path).map_err(st)?;
        Ok(())
    }

    /// Writes fork evidence next to the state; returns its path.
    ///
    /// # Errors
    /// [`ClientError::State`] on I/O errors.
    pub fn save_evidence(&self, ev: &ForkEvidence) -> Result<PathBuf, ClientError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| ClientError::State(e.to_string()))?;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = self.dir.join(format!("fork-{ts}.json"));
        std::fs::write(&p, serde_json::to_string_pretty(ev).expect("plain struct"))
            .map_err(|e| ClientError::State(e.to_string()))?;
        Ok(p)
    }
}

/// A light client over a fetcher.
pub struct LightClient<F: Fetcher> {
    policy: Policy,
    fetcher: F,
    state: StateStore,
}

/// What an update found.
#[derive(Debug, Clone)]
pub struct Update {
    /// The checkpoint the server served, verified.
    pub served: VerifiedCheckpoint,
    /// The largest verified checkpoint now known (the served one unless it is older).
    pub trusted: VerifiedCheckpoint,
    /// The served checkpoint is older than one verified before (a lagging server).
    pub stale: bool,
}

impl<F: Fetcher> LightClient<F> {
    /// A client with a policy, a fetcher and a state directory.
    pub fn new(policy: Policy, fetcher: F, state: StateStore) -> Self {
        Self {
            policy,
            fetcher,
            state,
        }
    }

    /// The fetcher.
    pub fn fetcher(&mut self) -> &mut F {
        &mut self.fetcher
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Fetches and verifies the latest checkpoint, checking it against stored state.
    ///
    /// # Errors
    /// Verification failures, [`ClientError::Fork`] with evidence, transport errors.
    pub async fn update(&mut self) -> Result<Update, ClientError> {
        let note = self.fetcher.checkpoint().await?;
        self.observe(&note).await
    }

    /// Verifies a checkpoint note obtained any way (e.g. inside a receipt) against the
    /// policy and the stored state, and advances the state if it is newer.
    ///
    /// # Errors
    /// As [`LightClient::update`].
    pub async fn observe(&mut self, note: &str) -> Result<Update, ClientError> {
        let served = self.policy.verify_checkpoint(note)?;
        let origin = self.policy.origin().to_string();
        let trusted = match self.state.load(&origin)? {
            None => None,
            // The stored note was verified when stored, but the policy may have changed
            // since (a key removed): re-verify; if it no longer verifies, start over from
            // the served checkpoint.
            Some(old) => self.policy.verify_checkpoint(&old).ok(),
        };
        let Some(trusted) = trusted else {
            self.state.store(&origin, note)?;
            return Ok(Update {
                trusted: served.clone(),
                served,
                stale: false,
            });
        };
        let (t, s) = (&trusted.checkpoint, &served.checkpoint);
        if s.size == t.size {
            if s.root != t.root {
                return Err(self.fork(
                    &trusted,
                    &served,
                    vec![],
                    "same tree size, different roots".into(),
                ));
            }
            return Ok(Update {
                trusted: served.clone(),
                served,
                stale: false,
            });
        }
        let (small, large) = if s.size > t.size {
            (&trusted, &served)
        } else {
            (&served, &trusted)
        };
        if small.checkpoint.size == 0 {
            if small.checkpoint.root != merkle::empty_root() {
                return Err(self.fork(
                    &trusted,
                    &served,
                    vec![],
                    "size-0 checkpoint with a non-empty root".into(),
                ));
            }
        } else {
            // Ask for the proof between exactly these two sizes; a lagging server may not
            // have the larger one, which is not a fork.
            let reply = match self
                .fetcher
                .consistency(small.checkpoint.size, large.checkpoint.size)
                .await
            {
                Ok(r) => r,
                Err(e) if s.size < t.size => {
                    tracing_stale(&e);
                    return Ok(Update {
                        served,
                        trusted,
                        stale: true,
                    });
                }
                Err(e) => return Err(e),
            };
            if let Err(e) = merkle::verify_consistency(
                small.checkpoint.size,
                large.checkpoint.size,
                &small.checkpoint.root,
                &large.checkpoint.root,
                &reply.path,
            ) {
                let proof = reply.path.iter().map(|h| B64.encode(h)).collect();
                return Err(self.fork(
                    &trusted,
                    &served,
                    proof,
                    format!(
                        "consistency proof {} -> {} does not verify: {e}",
                        small.checkpoint.size, large.checkpoint.size
                    ),
                ));
            }
        }
        if s.size > t.size {
            self.state.store(&origin, note)?;
            Ok(Update {
                trusted: served.clone(),
                served,
                stale: false,
            })
        } else {
            Ok(Update {
                served,
                trusted,
                stale: true,
            })
        }
    }

    fn fork(
        &self,
        trusted: &VerifiedCheckpoint,
        served: &VerifiedCheckpoint,
        proof: Vec<String>,
        reason: String,
    ) -> ClientError {
        let ev = ForkEvidence {
            trusted_note: trusted.note.clone(),
            conflicting_note: served.note.clone(),
            proof,
            reason,
        };
        let reason = match self.state.save_evidence(&ev) {
            Ok(p) => format!("{} (evidence saved to {})", ev.reason, p.display()),
            Err(e) => format!("{} (evidence could not be saved: {e})", ev.reason),
        };
        ClientError::Fork(Box::new(ForkEvidence { reason, ..ev }))
    }

    /// Fetches a receipt, verifies it completely (policy, inclusion) and checks its
    /// checkpoint against the stored state. Returns the receipt text and what it proves.
    ///
    /// # Errors
    /// Verification failures, forks, transport errors.
    pub async fn receipt(&mut self, index: u64) -> Result<(String, VerifiedReceipt), ClientError> {
        let text = self.fetcher.receipt(index).await?;
        let r = Receipt::parse(&text)?;
        if r.index != index {
            return Err(ClientError::Malformed(format!(
                "asked for leaf {index}, the receipt is for leaf {}",
                r.index
            )));
        }
        let v = r.verify(&self.policy)?;
        self.observe(&r.checkpoint).await?;
        Ok((text, v))
    }

    /// A verified consistency proof from `old` to `new` (0 = the latest checkpoint).
    ///
    /// The new root is authenticated against the latest verified checkpoint (directly
    /// when `new` is its size, otherwise by a second proof up to it); the old root is
    /// authenticated by the proof itself.
    ///
    /// # Errors
    /// Verification failures, transport errors.
    pub async fn consistency(
        &mut self,
        old: u64,
        new: u64,
    ) -> Result<(u64, u64, Vec<Hash>), ClientError> {
        let latest = self.update().await?.trusted.checkpoint;
        let new = if new == 0 { latest.size } else { new };
        if new > latest.size {
            return Err(ClientError::Config(format!(
                "size {new} is beyond the latest verified checkpoint ({})",
                latest.size
            )));
        }
        let reply = self.fetcher.consistency(old, new).await?;
        if reply.new_size != new {
            return Err(ClientError::Malformed(format!(
                "asked for a proof to size {new}, got one to {}",
                reply.new_size
            )));
        }
        if new != latest.size {
            let link = self.fetcher.consistency(new, latest.size).await?;
            merkle::verify_consistency(
                new,
                latest.size,
                &reply.new_root,
                &latest.root,
                &link.path,
            )?;
        } else if reply.new_root != latest.root {
            return Err(ClientError::Proof(merkle::ProofError::RootMismatch {
                expected: latest.root,
                computed: reply.new_root,
            }));
        }
        merkle::verify_consistency(old, new, &reply.old_root, &reply.new_root, &reply.path)?;
        Ok((old, new, reply.path))
    }
}

fn tracing_stale(e: &ClientError) {
    eprintln!(
        "warning: the server serves an older checkpoint than one verified before and cannot prove it consistent ({e}); keeping the newer one"
    );
}

/// Verifies a receipt file offline against a trust policy file.
///
/// # Errors
/// Config errors for unreadable files; verification errors otherwise.
pub fn verify_receipt_file(receipt: &Path, trust: &Path) -> Result<VerifiedReceipt, ClientError> {
    verify_channel_receipt_file(receipt, trust, "")
}

/// [`verify_receipt_file`] for a receipt of channel `channel` ("" = the system channel):
/// the policy is derived from `trust` (see `TrustPolicy::for_channel`).
///
/// # Errors
/// As [`verify_receipt_file`].
pub fn verify_channel_receipt_file(
    receipt: &Path,
    trust: &Path,
    channel: &str,
) -> Result<VerifiedReceipt, ClientError> {
    let policy = crate::profile::load_channel_policy(trust, channel)?;
    let limit = gridledger_core::receipt::MAX_RECEIPT_BYTES as u64;
    let text = crate::profile::read_bounded(receipt, limit, "receipt").map_err(|e| match e {
        // An oversized or non-text receipt is a receipt that does not verify (exit 1);
        // an unreadable path stays an operational error (exit 2).
        ClientError::Config(m) if !m.starts_with("cannot read") => {
            ClientError::Receipt(gridledger_core::receipt::ReceiptError::Malformed(m))
        }
        other => other,
    })?;
    Ok(Receipt::parse(&text)?.verify(&policy)?)
}
