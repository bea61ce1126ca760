//! Quorum-signed checkpoints.
//!
//! Every member signs only the checkpoint its own replica computed. This node collects
//! the other members' own checkpoints over the peer port, keeps a member's signature only
//! if it verifies under that member's configured key *and* names the same root this node
//! computed for that size, and serves the largest checkpoint that carries at least
//! `quorum` signatures (its own included). A client whose trust policy asks for k of the
//! members' keys therefore never has to trust the node it talks to: a node serving a
//! forged root cannot get honest members' signatures on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gridledger_core::checkpoint::Checkpoint;
use gridledger_core::merkle::Hash;
use gridledger_core::note::{SignatureLine, SignedNote, VerifierKey, verify_line};
use gridledger_proto::v1 as pb;
use parking_lot::Mutex;
use tonic::transport::{Channel, ClientTlsConfig};

use crate::ledger::Ledger;
use crate::store::Store;

/// Sizes whose collected signatures are kept (older ones are dropped).
const KEEP_SIZES: usize = 64;

/// For one tree size: the root, and each member's signature line by key name.
type Collected = (Hash, BTreeMap<String, SignatureLine>);

/// A member whose signatures this node collects.
#[derive(Debug, Clone)]
pub struct Member {
    /// Peer port address.
    pub peer: String,
    /// Its checkpoint verifier key.
    pub key: VerifierKey,
}

impl Member {
    /// The same member on the channel with origin `origin`: the same public key under
    /// the key name `<origin>/<node>` (its system key is named `<system>/<node>`).
    pub fn in_origin(&self, system: &str, origin: &str) -> Option<Member> {
        let node = self.key.name.strip_prefix(system)?.strip_prefix('/')?;
        let key =
            VerifierKey::new(&format!("{origin}/{node}"), self.key.alg, self.key.public).ok()?;
        Some(Member {
            peer: self.peer.clone(),
            key,
        })
    }
}

/// Collected signatures and the quorum rule.
pub struct Quorum<S: Store> {
    ledger: Arc<Ledger<S>>,
    quorum: usize,
    // Replaced as registrations change (see `set_members`).
    members: parking_lot::RwLock<Vec<Member>>,
    sigs: Mutex<BTreeMap<u64, Collected>>,
    // (size, member lines, assembled note) of the last note served.
    cache: Mutex<Option<(u64, usize, SignedNote)>>,
}

impl<S: Store> Quorum<S> {
    /// `quorum` signatures (this node's included) make a checkpoint servable.
    pub fn new(ledger: Arc<Ledger<S>>, quorum: usize, members: Vec<Member>) -> Arc<Self> {
        Arc::new(Self {
            ledger,
            quorum: quorum.max(1),
            members: parking_lot::RwLock::new(members),
            sigs: Mutex::new(BTreeMap::new()),
            cache: Mutex::new(None),
        })
    }

    /// Checks a member's own checkpoint note and keeps its signature if it is valid and
    /// agrees with this replica. Returns why it was not kept, if it was not.
    pub fn offer(&self, member: &Member, note: &str) -> Result<(), String> {
        let n = SignedNote::parse(note).map_err(|e| e.to_string())?;
        let cp = Checkpoint::parse(&n.text).map_err(|e| e.to_string())?;
        if cp.origin != self.ledger.origin() {
            return Err(format!("checkpoint for origin {:?}", cp.origin));
        }
        let line = n
            .sigs
            .iter()
            .find(|l| l.name == member.key.name && l.key_id == member.key.key_id)
            .ok_or("no signature by the member's key")?;
        verify_line(&member.key, &n.text, line).map_err(|e| e.to_string())?;
        if cp.size > self.ledger.tip().size || cp.size == 0 {
            // Not applied here yet (or empty): nothing to compare against now.
            return Ok(());
        }
        let mine = self.ledger.root_at(cp.size).map_err(|e| e.to_string())?;
        if mine != cp.root {
            tracing::error!(
                member = %member.key.name,
                size = cp.size,
                "a member signed a root this replica does not have: not collected"
            );
            return Err(format!(
                "root at size {} differs from this replica's",
                cp.size
            ));
        }
        let mut sigs = self.sigs.lock();
        let entry = sigs
            .entry(cp.size)
            .or_insert_with(|| (cp.root, BTreeMap::new()));
        entry.1.insert(member.key.name.clone(), line.clone());
        while sigs.len() > KEEP_SIZES {
            sigs.pop_first();
        }
        Ok(())
    }

    /// The checkpoint at `size` with the members' signatures, if it has a quorum.
    pub fn note_at(&self, size: u64) -> Option<SignedNote> {
        let sigs = self.sigs.lock();
        let none = BTreeMap::new();
        let lines = match sigs.get(&size) {
            Some((_, lines)) => lines,
            // Alone (quorum 1), this node's own signature is the quorum at every size.
            None if self.quorum <= 1 => &none,
            None => return None,
        };
        if lines.len() + 1 < self.quorum {
            return None;
        }
        self.assemble(size, lines)
    }

    /// This node's signed checkpoint at `size` plus the members' lines. Every GetCheckpoint
    /// and receipt asks for it, so the last one is kept: lines are only ever added, so the
    /// same size and count means the same note, and re-signing would be wasted work.
    fn assemble(&self, size: u64, lines: &BTreeMap<String, SignatureLine>) -> Option<SignedNote> {
        let mut cache = self.cache.lock();
        if let Some((s, n, note)) = cache.as_ref()
            && *s == size
            && *n == lines.len()
        {
            return Some(note.clone());
        }
        let mut note = self.ledger.sign_checkpoint_at(size).ok()?;
        note.sigs.extend(lines.values().cloned());
        *cache = Some((size, lines.len(), note.clone()));
        Some(note)
    }

    /// The largest checkpoint with at least `quorum` signatures, or this node's own latest
    /// checkpoint if none has a quorum yet.
    ///
    /// # Errors
    /// The stored checkpoint does not parse (storage corruption).
    pub fn best(&self) -> Result<SignedNote, String> {
        let sigs = self.sigs.lock();
        for (&size, (_, lines)) in sigs.iter().rev() {
            if lines.len() + 1 >= self.quorum
                && let Some(note) = self.assemble(size, lines)
            {
                return Ok(note);
            }
        }
        drop(sigs);
        SignedNote::parse(&self.ledger.tip().checkpoint).map_err(|e| format!("own checkpoint: {e}"))
    }

    /// Replaces the members whose signatures are collected (signatures already collected
    /// from members that remain are kept).
    pub fn set_members(&self, members: Vec<Member>) {
        *self.members.write() = members;
    }

    /// The members whose signatures are collected, by key name.
    pub fn member_names(&self) -> Vec<String> {
        self.members
            .read()
            .iter()
            .map(|m| m.key.name.clone())
            .collect()
    }

    /// Polls the members' own checkpoints whenever the height changes (and every second),
    /// until the process ends.
    pub fn collect(self: &Arc<Self>, tls: ClientTlsConfig) {
        let me = self.clone();
        tokio::spawn(async move {
            // Clients by peer address, kept across membership changes.
            let mut clients: std::collections::HashMap<
                String,
                Option<pb::peer_service_client::PeerServiceClient<Channel>>,
            > = Default::default();
            let mut heights = me.ledger.heights();
            loop {
                tokio::select! {
                    _ = heights.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                // Let the peers apply the same block first.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let members = me.members.read().clone();
                clients.retain(|peer, _| members.iter().any(|m| &m.peer == peer));
                for m in &members {
                    let client = clients.entry(m.peer.clone()).or_default();
                    if client.is_none() {
                        let host = m.peer.rsplit_once(':').map(|(h, _)| h).unwrap_or(&m.peer);
                        let ch = Channel::from_shared(format!("https://{}", m.peer))
                            .ok()
                            .and_then(|c| c.tls_config(tls.clone().domain_name(host)).ok())
                            .map(|c| {
                                c.connect_timeout(Duration::from_secs(1))
                                    .timeout(Duration::from_secs(2))
                                    .connect_lazy()
                            });
                        *client = ch.map(pb::peer_service_client::PeerServiceClient::new);
                    }
                    let Some(c) = client.as_mut() else {
                        continue;
                    };
                    let req = pb::OwnCheckpointRequest {
                        channel: me.ledger.channel_name().to_string(),
                    };
                    match c.get_own_checkpoint(req).await {
                        Ok(r) => {
                            if let Err(e) = me.offer(m, &r.into_inner().note) {
                                tracing::debug!(member = %m.key.name, error = %e, "member checkpoint not collected");
                            }
                        }
                        Err(e) => {
                            tracing::debug!(member = %m.key.name, error = %e, "member unreachable");
                            *client = None;
                        }
                    }
                }
            }
        });
    }
}
