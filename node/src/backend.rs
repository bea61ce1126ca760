//! The node's implementation of the services' [`ChainBackend`], and the one mapping of
//! ledger errors to service errors.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use gridledger_core::merkle::Hash;
use gridledger_core::pb::tx_body::Payload;
use gridledger_proto::v1 as pb;
use gridledger_services::ServiceError;
use gridledger_services::backend::{
    BlockInfo, ChainBackend, Committed, DataBackend, EntryInfo, StatusInfo,
};
use tokio::sync::watch;

use crate::channels::Channels;
use crate::commit::Router;
use crate::ledger::{Ledger, LedgerError};
use crate::quorum::{Member, Quorum};
use crate::store::Store;
use crate::witness::Witnesses;
use gridledger_services::documents::DocumentStore;

impl From<LedgerError> for ServiceError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::NotFound(m) => ServiceError::NotFound(m),
            LedgerError::InvalidArgument(m) => ServiceError::InvalidArgument(m),
            e @ (LedgerError::Store(_) | LedgerError::Corrupt(_)) => {
                ServiceError::Internal(e.to_string())
            }
        }
    }
}

/// One channel's backend: its ledger, quorum checkpoints and witness cosignatures, and
/// the node's shared submission router.
pub struct NodeChain<S: Store> {
    /// The channel's ledger.
    pub ledger: Arc<Ledger<S>>,
    /// Routes submissions to their channel's committer.
    pub router: Arc<Router<S>>,
    /// Largest SignedTx accepted.
    pub max_tx_bytes: usize,
    /// The Raft handle (for the leader's id in status).
    pub raft: Option<crate::raft::Raft>,
    /// Quorum-signed checkpoints.
    pub quorum: Option<Arc<Quorum<S>>>,
    /// Witness cosignatures.
    pub witnesses: Arc<Witnesses>,
    /// Keys of the class II collections this node holds.
    pub collection_keys: Arc<crate::private::CollectionKeys>,
    /// Class III documents.
    pub documents: Arc<dyn DocumentStore>,
    chains: std::sync::Weak<Chains<S>>,
}

/// Every channel's backend, made when the channel's ledger opens.
pub struct Chains<S: Store> {
    channels: Arc<Channels<S>>,
    router: Arc<Router<S>>,
    max_tx_bytes: usize,
    raft: Option<crate::raft::Raft>,
    quorum: usize,
    members: Vec<Member>,
    tls: Option<tonic::transport::ClientTlsConfig>,
    witness_keys: Vec<gridledger_core::note::VerifierKey>,
    collection_keys: Arc<crate::private::CollectionKeys>,
    documents: Arc<dyn DocumentStore>,
    map: parking_lot::RwLock<std::collections::BTreeMap<String, Arc<NodeChain<S>>>>,
    me: std::sync::Weak<Chains<S>>,
}

/// What every channel's backend shares.
pub struct ChainsConfig<S: Store> {
    /// The node's channels.
    pub channels: Arc<Channels<S>>,
    /// The submission router.
    pub router: Arc<Router<S>>,
    /// Largest SignedTx accepted.
    pub max_tx_bytes: usize,
    /// The Raft handle.
    pub raft: Option<crate::raft::Raft>,
    /// Signatures a served checkpoint needs, this node's included.
    pub quorum: usize,
    /// The other members, with their system-channel checkpoint keys.
    pub members: Vec<Member>,
    /// TLS to reach the members' peer ports (None: collect nothing).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// Witness keys accepted on every channel.
    pub witness_keys: Vec<gridledger_core::note::VerifierKey>,
    /// Keys of the class II collections this node holds.
    pub collection_keys: Arc<crate::private::CollectionKeys>,
    /// Class III documents.
    pub documents: Arc<dyn DocumentStore>,
}

impl<S: Store> Chains<S> {
    /// Makes the system channel's backend and every open channel's, and keeps making
    /// them as channels open. Must run inside the tokio runtime (quorum collection).
    pub fn start(c: ChainsConfig<S>) -> Arc<Self> {
        let chains = Arc::new_cyclic(|me| Self {
            channels: c.channels,
            router: c.router,
            max_tx_bytes: c.max_tx_bytes,
            raft: c.raft,
            quorum: c.quorum,
            members: c.members,
            tls: c.tls,
            witness_keys: c.witness_keys,
            collection_keys: c.collection_keys,
            documents: c.documents,
            map: Default::default(),
            me: me.clone(),
        });
        let me = chains.clone();
        let mut opened = chains.channels.opened();
        tokio::spawn(async move {
            loop {
                me.get("");
                for name in me.channels.names() {
                    me.get(&name);
                }
                // Members approved on the ledger since start-up are collected too.
                for chain in me.map.read().values() {
                    if let Some(q) = &chain.quorum {
                        let m = me.members_for(&chain.ledger);
                        if q.member_names()
                            != m.iter().map(|x| x.key.name.clone()).collect::<Vec<_>>()
                        {
                            q.set_members(m);
                        }
                    }
                }
                tokio::select! {
                    r = opened.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        });
        chains.get("");
        chains
    }

    /// The system channel's backend.
    pub fn system(&self) -> Arc<NodeChain<S>> {
        self.get("").expect("the system channel always exists")
    }

    /// A channel's backend ("" = system), made on first use; `None` if no such channel.
    pub fn get(&self, name: &str) -> Option<Arc<NodeChain<S>>> {
        if let Some(c) = self.map.read().get(name) {
            return Some(c.clone());
        }
        let ledger = self.channels.get(name)?;
        let mut map = self.map.write();
        if let Some(c) = map.get(name) {
            return Some(c.clone());
        }
        let members = self.members_for(&ledger);
        let quorum = Quorum::new(ledger.clone(), self.quorum, members);
        if let Some(tls) = &self.tls {
            quorum.collect(tls.clone());
        }
        let chain = Arc::new(NodeChain {
            ledger,
            router: self.router.clone(),
            max_tx_bytes: self.max_tx_bytes,
            raft: self.raft.clone(),
            quorum: Some(quorum),
            witnesses: Arc::new(Witnesses::new(self.witness_keys.clone())),
            collection_keys: self.collection_keys.clone(),
            documents: self.documents.clone(),
            chains: self.me.clone(),
        });
        map.insert(name.to_string(), chain.clone());
        Some(chain)
    }

    /// The members whose signatures a channel's quorum collects: the configured ones and
    /// every node registered on the ledger by an approved proposal (not removed), other
    /// than this node, under the channel's key names (`<channel origin>/<node>`: the same
    /// public keys sign every channel). Sorted by key name.
    fn members_for(&self, ledger: &Ledger<S>) -> Vec<Member> {
        let system_origin = self.channels.system().origin();
        let me = self.channels.system().node_id();
        let mut all: std::collections::BTreeMap<String, Member> = Default::default();
        for m in &self.members {
            all.insert(m.key.name.clone(), m.clone());
        }
        for n in ledger.nodes().unwrap_or_default() {
            if n.removed || n.node_id == me {
                continue;
            }
            if let Ok(key) = gridledger_core::note::VerifierKey::parse(&n.checkpoint_key) {
                all.entry(key.name.clone())
                    .or_insert(Member { peer: n.peer, key });
            }
        }
        all.into_values()
            .filter_map(|m| m.in_origin(system_origin, ledger.origin()))
            .collect()
    }

    /// The backend of the channel with this origin.
    pub fn by_origin(&self, origin: &str) -> Option<Arc<NodeChain<S>>> {
        let l = self.channels.by_origin(origin)?;
        self.get(l.channel_name())
    }
}

impl<S: Store> NodeChain<S> {
    /// The checkpoint this node serves: the largest witnessed one when witnesses have
    /// cosigned (with the members' signatures in a cluster), else the largest with a
    /// quorum of members, else this node's own latest.
    fn served(&self) -> Result<gridledger_core::note::SignedNote, ServiceError> {
        if let Some(size) = self.witnesses.latest() {
            let base = match &self.quorum {
                Some(q) => q.note_at(size),
                None => Some(self.ledger.sign_checkpoint_at(size)?),
            };
            if let Some(n) = base {
                return Ok(self.witnesses.attach(n, size));
            }
        }
        match &self.quorum {
            Some(q) => q.best().map_err(ServiceError::Internal),
            None => gridledger_core::note::SignedNote::parse(&self.ledger.tip().checkpoint)
                .map_err(|e| ServiceError::Internal(format!("own checkpoint: {e}"))),
        }
    }
}

impl<S: Store> ChainBackend for NodeChain<S> {
    fn channel(
        self: &Arc<Self>,
        name: &str,
        caller: &gridledger_services::auth::Principal,
    ) -> Result<Arc<Self>, ServiceError> {
        if name == self.ledger.channel_name() && self.ledger.channel_def().is_none() {
            return Ok(self.clone());
        }
        let chains = self
            .chains
            .upgrade()
            .ok_or_else(|| ServiceError::Internal("node is shutting down".into()))?;
        let chain = chains.get(name).ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no channel named {name:?}; this ledger has {:?}",
                chains.channels.names()
            ))
        })?;
        if let Some(def) = chain.ledger.channel_def() {
            let regulator = caller
                .roles
                .contains(&gridledger_services::auth::Role::Regulator);
            if !regulator && !def.members.contains(&caller.org) {
                return Err(ServiceError::PermissionDenied(format!(
                    "channel {name:?} is readable by its member orgs {:?} and the regulator",
                    def.members
                )));
            }
        }
        Ok(chain)
    }

    fn status(&self) -> Result<StatusInfo, ServiceError> {
        let t = self.ledger.tip();
        let leader = self.raft.as_ref().and_then(|r| {
            let m = r.metrics().borrow().clone();
            let l = m.current_leader?;
            m.membership_config.membership().get_node(&l).cloned()
        });
        Ok(StatusInfo {
            origin: self.ledger.origin().to_string(),
            tree_size: t.size,
            height: t.height,
            root: t.root,
            node_id: self.ledger.node_id().to_string(),
            counts: t.counts.into_iter().collect(),
            leader_id: leader.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
            leader_api: leader.map(|n| n.api).unwrap_or_default(),
        })
    }

    fn checkpoint(&self) -> Result<(String, u64, Hash), ServiceError> {
        let note = self.served()?;
        let cp = gridledger_core::checkpoint::Checkpoint::parse(&note.text)
            .map_err(|e| ServiceError::Internal(format!("own checkpoint: {e}")))?;
        Ok((note.to_string(), cp.size, cp.root))
    }

    fn block(&self, height: u64, include_leaves: bool) -> Result<BlockInfo, ServiceError> {
        let header = self.ledger.block_header(height)?.ok_or_else(|| {
            ServiceError::NotFound(format!(
                "block {height} does not exist: height is {}",
                self.ledger.tip().height
            ))
        })?;
        let leaves = if include_leaves {
            self.ledger.leaves(header.first_index, header.leaf_count)?
        } else {
            Vec::new()
        };
        Ok(BlockInfo { header, leaves })
    }

    fn entry(&self, index: u64) -> Result<EntryInfo, ServiceError> {
        let e = self.ledger.entry(index)?;
        Ok(EntryInfo {
            index: e.index,
            leaf: e.leaf,
            block_height: e.block_height,
        })
    }

    fn inclusion(&self, index: u64, size: u64) -> Result<(u64, Vec<Hash>), ServiceError> {
        Ok(self.ledger.inclusion_proof(index, size)?)
    }

    fn consistency(&self, old: u64, new: u64) -> Result<(u64, Vec<Hash>), ServiceError> {
        Ok(self.ledger.consistency_proof(old, new)?)
    }

    fn receipt(&self, index: u64) -> Result<String, ServiceError> {
        // Against the served checkpoint when it covers the leaf; a leaf newer than that
        // gets the newest checkpoint there is (clients whose policy asks for more
        // signatures retry a moment later).
        if let Ok(r) = self.ledger.receipt_against(index, &self.served()?) {
            return Ok(r);
        }
        if let Some(q) = &self.quorum
            && let Ok(best) = q.best()
            && let Ok(r) = self.ledger.receipt_against(index, &best)
        {
            return Ok(r);
        }
        Ok(self.ledger.receipt(index)?)
    }

    fn root_at(&self, size: u64) -> Result<Hash, ServiceError> {
        Ok(self.ledger.root_at(size)?)
    }

    fn add_cosignature(&self, note: &str) -> Result<u32, ServiceError> {
        if !self.witnesses.configured() {
            return Err(ServiceError::FailedPrecondition(
                "this node accepts no witness cosignatures (witness_keys is empty)".into(),
            ));
        }
        // The checkpoint's origin names the channel it belongs to.
        let origin = note.split('\n').next().unwrap_or_default();
        if origin != self.ledger.origin()
            && let Some(chains) = self.chains.upgrade()
            && let Some(other) = chains.by_origin(origin)
        {
            return other.witnesses.add(&other.ledger, note);
        }
        self.witnesses.add(&self.ledger, note)
    }

    fn submit(
        &self,
        signed_tx: Bytes,
        private: Option<pb::PrivatePayload>,
    ) -> BoxFuture<'static, Result<Committed, ServiceError>> {
        let r = self.router.clone();
        Box::pin(async move { r.submit(signed_tx, private).await })
    }

    fn heights(&self) -> watch::Receiver<u64> {
        self.ledger.heights()
    }

    fn max_tx_bytes(&self) -> usize {
        self.max_tx_bytes
    }
}

fn payload_at<S: Store>(ledger: &Ledger<S>, index: u64) -> Result<Payload, ServiceError> {
    payload_of(&ledger.entry(index)?.leaf, index)
}

fn payload_of(leaf: &[u8], index: u64) -> Result<Payload, ServiceError> {
    let (_, body) = gridledger_core::tx::decode(leaf)
        .map_err(|err| ServiceError::Internal(format!("leaf {index} does not decode: {err}")))?;
    body.payload
        .ok_or_else(|| ServiceError::Internal(format!("leaf {index} has no payload")))
}

impl<S: Store> DataBackend for NodeChain<S> {
    fn meter(&self, asset_no: &str) -> Result<Option<pb::Meter>, ServiceError> {
        let Some((owner, index)) = self.ledger.instrument(asset_no)? else {
            return Ok(None);
        };
        let Payload::RegisterInstrument(i) = payload_at(&self.ledger, index)? else {
            return Err(ServiceError::Internal(format!(
                "instrument {asset_no:?} points at leaf {index}, which is not a registration"
            )));
        };
        Ok(Some(pb::Meter {
            asset_no: i.asset_no,
            serial_no: i.serial_no,
            manufacturer_org: i.manufacturer_org,
            model: i.model,
            kind: pb::InstrumentKind::try_from(i.kind)
                .map(|k| {
                    k.as_str_name()
                        .trim_start_matches("INSTRUMENT_KIND_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            accuracy_class: i.accuracy_class,
            ratings: i.ratings,
            owner_org: owner,
            leaf_index: index,
        }))
    }

    fn readings(
        &self,
        asset_no: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<pb::DailyReading>, ServiceError> {
        let days = self.ledger.reading_days(asset_no, from, to, limit)?;
        let mut out = Vec::with_capacity(days.len());
        for (day, index) in days {
            let rec = crate::private::open_record(&self.ledger, &self.collection_keys, index)?;
            if rec.record_type != "reading" {
                return Err(ServiceError::Internal(format!(
                    "reading {asset_no:?}/{day} points at leaf {index}, which is not a reading"
                )));
            }
            let mut d = pb::DailyReading {
                day,
                leaf_index: index,
                collection: rec.collection,
                ..Default::default()
            };
            if let Some(by) = rec.purged_by {
                d.purged_by = Some(by);
                out.push(d);
                continue;
            }
            let (salt, payload) = (rec.salt, rec.payload);
            let v = gridledger_core::private::decode_reading(&payload).map_err(|e| {
                ServiceError::Internal(format!("stored reading of leaf {index}: {e}"))
            })?;
            d.import_wh = v.import_wh.iter().sum();
            d.export_wh = v.export_wh.iter().sum();
            d.register_import_wh = v.register_import_wh;
            d.register_export_wh = v.register_export_wh;
            d.import_intervals_wh = v.import_wh;
            d.export_intervals_wh = v.export_wh;
            d.salt = salt;
            d.payload = payload;
            out.push(d);
        }
        Ok(out)
    }

    fn private_record(
        &self,
        index: u64,
    ) -> Result<gridledger_services::backend::PrivateRecord, ServiceError> {
        crate::private::open_record(&self.ledger, &self.collection_keys, index)
    }

    fn signer_org(&self, key: &[u8; 32]) -> Result<Option<String>, ServiceError> {
        Ok(self.ledger.signer(key).map(|i| i.org_id))
    }

    fn collection_members(&self, name: &str) -> Result<Option<Vec<String>>, ServiceError> {
        Ok(self
            .ledger
            .collections()?
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.members))
    }

    fn record(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>, ServiceError> {
        Ok(self.ledger.metrology_record(key)?)
    }

    fn records(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<gridledger_core::contract::RecordEntry>, ServiceError> {
        Ok(self.ledger.metrology_records(prefix, limit)?)
    }

    fn receipt(&self, index: u64) -> Result<String, ServiceError> {
        <Self as ChainBackend>::receipt(self, index)
    }

    fn position(&self) -> Result<(String, u64), ServiceError> {
        Ok((self.ledger.origin().to_string(), self.ledger.tip().size))
    }

    fn documents(&self) -> Arc<dyn DocumentStore> {
        self.documents.clone()
    }

    fn submit_tx(&self, signed_tx: Bytes) -> BoxFuture<'static, Result<Committed, ServiceError>> {
        let r = self.router.clone();
        Box::pin(async move { r.submit(signed_tx, None).await })
    }
}
