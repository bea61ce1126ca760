//! SupplierService: supplier collaboration (DOMAIN.md §2.7) and the resumable sync stream
//! per organisation (DOMAIN.md §5, "supplier sync"). The same functions serve the gRPC
//! methods and the gateway's routes (`/v1/supplier/...`, `/v1/sync` as Server-Sent
//! Events).
//!
//! The sync stream walks the log from a cursor ([`SyncCursor`]: the next leaf index,
//! pinned to the origin and to the previous leaf's hash) and turns each leaf the caller's
//! org may see into one event, in log order. Every event carries the cursor after its
//! leaf, so a consumer that stores the cursor of the last event it processed resumes
//! with every later event exactly once, on any node of the ledger (they all hold the same
//! log). Events go through a bounded channel: a slow consumer holds the walker back
//! instead of making the node buffer.

use std::sync::Arc;

use gridledger_core::metrology::{InstrumentRec, keys};
use gridledger_core::pb::{self as cpb, OrgKind, tx_body::Payload};
use gridledger_core::supply::{DemandRec, SyncCursor};
use gridledger_proto::v1 as pb;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::auth::Principal;
use crate::backend::{ChainBackend, DataBackend};
use crate::error::{Result, ServiceError};

/// Most plans or batches one unfiltered supplier view reads (before it filters what the
/// caller may see).
pub const MAX_LISTED: usize = 10_000;

/// Events buffered per stream before the walker waits for the consumer.
pub const SYNC_BUFFER: usize = 32;

/// The supplier operations over a backend.
#[derive(Debug)]
pub struct Supply<B> {
    backend: Arc<B>,
}

impl<B> Clone for Supply<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
        }
    }
}

/// The decoded contents of a class II supplier payload, as JSON.
fn contents_json(record_type: &str, payload: &[u8], leaf: &Payload) -> Result<Value> {
    let bad = |e: String| ServiceError::Internal(format!("stored {record_type} payload: {e}"));
    Ok(match (record_type, leaf) {
        ("demand_plan", _) => {
            let d = gridledger_core::supply::decode_demand(payload).map_err(bad)?;
            json!({
                "lines": d.lines.iter().map(|l| json!({"kind": gridledger_core::metrology::kind_name(l.kind), "accuracy_class": l.accuracy_class, "month": l.month, "quantity": l.quantity})).collect::<Vec<_>>(),
                "notes": d.notes,
            })
        }
        ("demand_ack", _) => {
            let a = gridledger_core::supply::decode_ack(payload).map_err(bad)?;
            json!({
                "production_plan": a.production_plan,
                "deliveries": a.deliveries.iter().map(|d| json!({"kind": gridledger_core::metrology::kind_name(d.kind), "accuracy_class": d.accuracy_class, "quantity": d.quantity, "date": d.date})).collect::<Vec<_>>(),
            })
        }
        ("test_batch", Payload::PublishTestBatch(b)) => {
            let r = gridledger_core::supply::decode_batch(payload, b).map_err(bad)?;
            json!({
                "results": r.results.iter().map(|t| json!({
                    "asset_no": t.asset_no, "test_date": t.test_date, "passed": t.passed,
                    "errors": t.errors.iter().map(|e| json!({"load_point": e.load_point, "error_centi_percent": e.error_centi_percent})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        }
        _ => Value::Null,
    })
}

/// A sync event as JSON (SSE `data`, the CLI's output): `cursor`, `type`,
/// `leaf_index`, `record` (the event's JSON), and `salt`/`payload` (hex) and `receipt`
/// when present.
pub fn event_json(ev: &pb::SyncEvent) -> Value {
    let mut v = json!({
        "cursor": ev.cursor, "type": ev.r#type, "leaf_index": ev.leaf_index,
        "record": serde_json::from_str::<Value>(&ev.json).unwrap_or(Value::Null),
    });
    if !ev.payload.is_empty() {
        v["salt"] = json!(hex::encode(&ev.salt));
        v["payload"] = json!(hex::encode(&ev.payload));
    }
    if !ev.receipt.is_empty() {
        v["receipt"] = json!(ev.receipt);
    }
    v
}

/// The columns of a supplier records table.
fn columns(table: &str) -> Vec<pb::Column> {
    let c = |field: &str, r#type: &str, unit: &str| pb::Column {
        field: field.into(),
        r#type: r#type.into(),
        unit: unit.into(),
    };
    let mut v = if table == "demand_plans" {
        vec![
            c("plan_id", "string", ""),
            c("org", "string", "grid company (plans)"),
            c("suppliers", "list", "addressed suppliers (plans)"),
            c(
                "supplier_org",
                "string",
                "acknowledging supplier (acknowledgements)",
            ),
            c("revises", "integer", "leaf of the acknowledgement revised"),
        ]
    } else {
        vec![
            c("batch_id", "string", ""),
            c("supplier_org", "string", "maker"),
            c("buyer_org", "string", "buying grid company"),
            c("asset_nos", "list", "instruments tested"),
        ]
    };
    v.extend([
        c("contents", "object", "the decoded class II payload"),
        c("collection", "string", "class II collection"),
        c("salt", "string", "hex, 32 bytes"),
        c(
            "payload",
            "string",
            "hex, the encoded payload the commitment covers",
        ),
        c(
            "purged_by",
            "integer",
            "leaf index of the purge; contents absent",
        ),
    ]);
    v
}

/// One event before its cursor is known.
struct Event {
    kind: &'static str,
    json: Value,
    salt: Vec<u8>,
    payload: Vec<u8>,
}

impl<B: DataBackend + ChainBackend> Supply<B> {
    /// Wraps a backend.
    pub fn new(backend: Arc<B>) -> Self {
        Self { backend }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        self.backend
            .record(key)?
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| ServiceError::Internal(format!("state record: {e}")))
            })
            .transpose()
    }

    /// Whether `org` may see leaf `index`, and if so its event (without the cursor).
    fn event(
        &self,
        org: &str,
        org_kind: OrgKind,
        index: u64,
        leaf: &[u8],
    ) -> Result<Option<Event>> {
        let (tx, body) = gridledger_core::tx::decode(leaf)
            .map_err(|e| ServiceError::Internal(format!("leaf {index}: {e}")))?;
        let Some(payload) = body.payload.as_ref() else {
            return Ok(None);
        };
        let signer_org = || -> Result<String> {
            let key: [u8; 32] = tx.signer_key_id.as_slice().try_into().map_err(|_| {
                ServiceError::Internal(format!("leaf {index}: signer key is not 32 bytes"))
            })?;
            Ok(self.backend.signer_org(&key)?.unwrap_or_default())
        };
        let (kind, mut v) = match payload {
            Payload::PublishDemandPlan(d) => {
                let by = signer_org()?;
                if by != org && !d.suppliers.iter().any(|s| s == org) {
                    return Ok(None);
                }
                (
                    "demand_plan",
                    json!({"plan_id": d.plan_id, "org": by, "suppliers": d.suppliers, "collection": d.collection, "commitment": hex::encode(&d.commitment)}),
                )
            }
            Payload::AcknowledgeDemand(a) => {
                let by = signer_org()?;
                let plan: Option<DemandRec> = self.get(&keys::demand_plan(&a.plan_id))?;
                if by != org && plan.as_ref().is_none_or(|p| p.org != org) {
                    return Ok(None);
                }
                (
                    "demand_ack",
                    json!({"plan_id": a.plan_id, "supplier_org": by, "plan_org": plan.map(|p| p.org), "revises": a.revises, "collection": a.collection, "commitment": hex::encode(&a.commitment)}),
                )
            }
            Payload::PublishTestBatch(b) => {
                let by = signer_org()?;
                if by != org && b.buyer_org != org {
                    return Ok(None);
                }
                (
                    "test_batch",
                    json!({"batch_id": b.batch_id, "supplier_org": by, "buyer_org": b.buyer_org, "asset_nos": b.asset_nos, "collection": b.collection, "commitment": hex::encode(&b.commitment)}),
                )
            }
            Payload::RegisterModel(m) => {
                let by = signer_org()?;
                if by != org && org_kind != OrgKind::GridCompany {
                    return Ok(None);
                }
                (
                    "model",
                    json!({"supplier_org": by, "model": m.model, "kind": gridledger_core::metrology::kind_name(m.kind), "accuracy_class": m.accuracy_class, "description": m.description}),
                )
            }
            Payload::RegisterInstrument(r) => {
                if r.owner_org != org && r.manufacturer_org != org {
                    return Ok(None);
                }
                (
                    "instrument",
                    json!({"asset_no": r.asset_no, "serial_no": r.serial_no, "model": r.model, "kind": gridledger_core::metrology::kind_name(r.kind), "accuracy_class": r.accuracy_class, "manufacturer_org": r.manufacturer_org, "owner_org": r.owner_org}),
                )
            }
            Payload::IssueCertificate(c) => {
                let inst: Option<InstrumentRec> = self.get(&keys::instrument(&c.asset_no))?;
                if inst
                    .as_ref()
                    .is_none_or(|i| i.owner_org != org && i.manufacturer_org != org)
                {
                    return Ok(None);
                }
                (
                    "certificate",
                    json!({"cert_no": c.cert_no, "asset_no": c.asset_no, "kind": cpb::CertificateKind::try_from(c.kind).map(|k| k.as_str_name()).unwrap_or_default(), "institution_org": c.institution_org, "test_date": c.test_date, "valid_until": c.valid_until, "passed": c.passed, "dispute_id": c.dispute_id}),
                )
            }
            // Retention: the parties of a purged supplier record learn of the purge, so a
            // connector can delete the payload it stored.
            Payload::PurgePrivate(pp) => {
                let hex_c = hex::encode(&pp.commitment);
                let Some(rec) =
                    self.get::<gridledger_core::private::PurgeRec>(&keys::purged(&hex_c))?
                else {
                    return Ok(None);
                };
                let target = self.backend.entry(rec.leaf_index)?.leaf;
                // A purge never purges a purge, so this looks one level deep only.
                if self
                    .event(org, org_kind, rec.leaf_index, &target)?
                    .is_none()
                {
                    return Ok(None);
                }
                (
                    "purge",
                    json!({"purged_leaf": rec.leaf_index, "commitment": hex_c, "reason": pp.reason, "purged_by_org": rec.purged_by_org}),
                )
            }
            _ => return Ok(None),
        };
        let mut ev = Event {
            kind,
            json: Value::Null,
            salt: Vec::new(),
            payload: Vec::new(),
        };
        if let Some(c) = gridledger_core::private::class_ii(&body) {
            // The on-ledger policy: the org must still belong to the collection.
            let members = self
                .backend
                .collection_members(c.collection)?
                .unwrap_or_default();
            if !members.iter().any(|m| m == org) {
                v["withheld"] = json!(format!(
                    "org {org:?} is not a member of collection {:?}",
                    c.collection
                ));
            } else {
                let rec = self.backend.private_record(index)?;
                match rec.purged_by {
                    Some(by) => v["purged_by"] = json!(by),
                    None => {
                        v["contents"] = contents_json(c.record_type, &rec.payload, payload)?;
                        ev.salt = rec.salt;
                        ev.payload = rec.payload;
                    }
                }
            }
        }
        ev.json = v;
        Ok(Some(ev))
    }

    /// Parses and checks a cursor against this ledger: its origin, its position within
    /// the log, and the hash of the leaf before it. Returns the next leaf index.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for text that is no cursor or one of another ledger; OUT_OF_RANGE
    /// for a position past this node's log; FAILED_PRECONDITION when the log at that
    /// position is not the one the cursor was made on.
    pub fn resume_at(&self, cursor: &str) -> Result<u64> {
        if cursor.is_empty() {
            return Ok(0);
        }
        let c = SyncCursor::decode(cursor).map_err(ServiceError::InvalidArgument)?;
        let (origin, size) = self.backend.position()?;
        if c.origin_tag != gridledger_core::supply::origin_tag(&origin) {
            return Err(ServiceError::InvalidArgument(format!(
                "this cursor belongs to another ledger, not {origin}"
            )));
        }
        if c.next > size {
            return Err(ServiceError::OutOfRange(format!(
                "the cursor is at leaf {}, but this node's log has {size} leaves (is this node behind? try another)",
                c.next
            )));
        }
        if c.next > 0 {
            let leaf = self.backend.entry(c.next - 1)?.leaf;
            let h = gridledger_core::merkle::leaf_hash(&leaf);
            if h[..16] != c.prev {
                return Err(ServiceError::FailedPrecondition(format!(
                    "the log at the cursor's position (leaf {}) is not the one the cursor was made on: the ledger was reset, or the cursor altered",
                    c.next - 1
                )));
            }
        }
        Ok(c.next)
    }

    /// Checks that `p` may read its org's supplier records (class II): a dynamic token
    /// with scope `supply:<its org>`.
    ///
    /// # Errors
    /// PERMISSION_DENIED naming what is missing.
    pub fn check_reader<'a>(&self, p: &'a Principal) -> Result<&'a str> {
        if p.is_dynamic() && p.scope.iter().any(|s| *s == format!("supply:{}", p.org)) {
            return Ok(&p.org);
        }
        Err(ServiceError::PermissionDenied(format!(
            "supplier records are class II: {} must present a dynamic token with scope \"supply:<its org>\" (POST /v1/auth/dynamic-tokens)",
            p.describe()
        )))
    }

    /// The sync stream of `p`'s org from `req.cursor`: a receiver of events, in log
    /// order, fed by a task that follows the log until the receiver is dropped or
    /// `max_events` were sent.
    ///
    /// # Errors
    /// As [`Self::check_reader`] and [`Self::resume_at`].
    pub fn sync(
        &self,
        p: &Principal,
        req: &pb::SyncRequest,
    ) -> Result<mpsc::Receiver<Result<pb::SyncEvent>>> {
        let org = self.check_reader(p)?.to_string();
        let org_kind = p.org_kind;
        let mut next = self.resume_at(&req.cursor)?;
        let (tx, rx) = mpsc::channel(SYNC_BUFFER);
        let me = self.clone();
        let receipts = req.receipts;
        let max = req.max_events as u64;
        // The origin does not change under a running node: read it once.
        let (origin, _) = self.backend.position()?;
        tokio::spawn(async move {
            let mut heights = me.backend.heights();
            let mut sent = 0u64;
            loop {
                let size = match me.backend.position() {
                    Ok((_, size)) => size,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                while next < size {
                    let step = (|| -> Result<Option<pb::SyncEvent>> {
                        let leaf = me.backend.entry(next)?.leaf;
                        let Some(ev) = me.event(&org, org_kind, next, &leaf)? else {
                            return Ok(None);
                        };
                        let cursor = SyncCursor::new(
                            &origin,
                            next + 1,
                            &gridledger_core::merkle::leaf_hash(&leaf),
                        );
                        Ok(Some(pb::SyncEvent {
                            cursor: cursor.encode(),
                            r#type: ev.kind.into(),
                            leaf_index: next,
                            json: ev.json.to_string(),
                            salt: ev.salt,
                            payload: ev.payload,
                            receipt: if receipts {
                                DataBackend::receipt(me.backend.as_ref(), next)?
                            } else {
                                String::new()
                            },
                        }))
                    })();
                    next += 1;
                    match step {
                        Ok(None) => {}
                        Ok(Some(ev)) => {
                            // Waits while the consumer is behind (bounded buffer); stops
                            // when it went away.
                            if tx.send(Ok(ev)).await.is_err() {
                                return;
                            }
                            sent += 1;
                            if max > 0 && sent >= max {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                // Caught up: wait for the next block, or for the consumer to leave.
                tokio::select! {
                    changed = heights.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }

    /// The registered models (class I), of one supplier when `supplier` is not empty.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a malformed supplier id; storage errors.
    pub fn models_view(&self, supplier: &str, receipts: bool) -> Result<pb::DataView> {
        if !supplier.is_empty() && !gridledger_core::contract::valid_ident(supplier) {
            return Err(ServiceError::InvalidArgument(format!(
                "supplier {supplier:?} is not an org id"
            )));
        }
        let prefix = if supplier.is_empty() {
            keys::MODELS.to_vec()
        } else {
            keys::models_of(supplier)
        };
        let mut rows = Vec::new();
        for (_, leaf, v) in self.backend.records(&prefix, MAX_LISTED)? {
            let m: gridledger_core::supply::ModelRec = serde_json::from_slice(&v)
                .map_err(|e| ServiceError::Internal(format!("model record: {e}")))?;
            let mut j = serde_json::to_value(&m).expect("plain record");
            j["kind"] = json!(
                m.kind
                    .trim_start_matches("INSTRUMENT_KIND_")
                    .to_ascii_lowercase()
            );
            rows.push(pb::RecordRow {
                leaf_index: leaf,
                record_type: "model".into(),
                json: j.to_string(),
                receipt: if receipts {
                    DataBackend::receipt(self.backend.as_ref(), leaf)?
                } else {
                    String::new()
                },
            });
        }
        let c = |field: &str, r#type: &str, unit: &str| pb::Column {
            field: field.into(),
            r#type: r#type.into(),
            unit: unit.into(),
        };
        let (origin, size) = self.backend.position()?;
        Ok(pb::DataView {
            title: if supplier.is_empty() {
                "registered models".into()
            } else {
                format!("models of {supplier}")
            },
            summary: vec![pb::Fact {
                name: "models".into(),
                json: rows.len().to_string(),
            }],
            tables: vec![pb::Table {
                name: "models".into(),
                description: "instrument models suppliers registered".into(),
                data_class: "I".into(),
                columns: vec![
                    c("supplier_org", "string", "org id"),
                    c("model", "string", ""),
                    c("kind", "string", "InstrumentKind"),
                    c("accuracy_class", "string", "IEC/EN class"),
                    c("description", "string", ""),
                ],
                rows,
            }],
            origin,
            tree_size: size,
        })
    }

    /// Submits a transaction through a SupplierService write method, refusing any other
    /// payload type than `want`.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for another type; as ChainService.Submit otherwise.
    pub async fn submit_typed(
        &self,
        want: &'static str,
        req: pb::SubmitRequest,
    ) -> Result<pb::SubmitResponse> {
        let body = gridledger_core::tx::decode(&req.signed_tx)
            .map_err(|e| ServiceError::InvalidArgument(format!("signed_tx: {e}")))?
            .1;
        let got = gridledger_core::tx::payload_kind(&body);
        if got != want {
            return Err(ServiceError::InvalidArgument(format!(
                "this method takes a {want} transaction, got {got}"
            )));
        }
        let c = self
            .backend
            .submit(req.signed_tx, req.private_payload)
            .await?;
        Ok(pb::SubmitResponse {
            leaf_index: c.leaf_index,
            block_height: c.block_height,
            leaf_hash: c.leaf_hash.to_vec(),
            tree_size: c.tree_size,
        })
    }

    /// The supplier records of `kind` (`demand_plan`, `demand_ack`, `test_batch`) that
    /// `p`'s org may see, as a view; `id` narrows to one plan or batch.
    ///
    /// # Errors
    /// As [`Self::check_reader`]; storage errors.
    pub fn records_view(
        &self,
        p: &Principal,
        table: &str,
        id: &str,
        receipts: bool,
    ) -> Result<pb::DataView> {
        let org = self.check_reader(p)?;
        let plans = table == "demand_plans";
        let kinds: &[&str] = if plans {
            &["demand_plan", "demand_ack"]
        } else {
            &["test_batch"]
        };
        // One plan or batch is one key; the whole list is a bounded scan.
        let records = if id.is_empty() {
            let prefix = if plans {
                keys::DEMAND_PLANS
            } else {
                keys::BATCHES
            };
            self.backend.records(prefix, MAX_LISTED)?
        } else {
            let key = if plans {
                keys::demand_plan(id)
            } else {
                keys::batch(id)
            };
            self.backend
                .record(&key)?
                .map(|(leaf, v)| (key, leaf, v))
                .into_iter()
                .collect()
        };
        // Leaf index → its bytes when already read (the acknowledgement walk reads them).
        let mut leaves: std::collections::BTreeMap<u64, Option<Vec<u8>>> = Default::default();
        for (_, leaf, v) in records {
            leaves.insert(leaf, None);
            if plans {
                let plan: DemandRec = serde_json::from_slice(&v)
                    .map_err(|e| ServiceError::Internal(format!("demand plan record: {e}")))?;
                // Every acknowledgement in the plan's history: follow each supplier's
                // revisions back from its current one.
                for (_, ack_leaf, av) in self
                    .backend
                    .records(&keys::demand_acks(&plan.plan_id), 100)?
                {
                    leaves.insert(ack_leaf, None);
                    let mut rec: gridledger_core::supply::AckRec = serde_json::from_slice(&av)
                        .map_err(|e| ServiceError::Internal(format!("ack record: {e}")))?;
                    while let Some(prev) = rec.revises {
                        let leaf = self.backend.entry(prev)?.leaf;
                        let payload = gridledger_core::tx::decode(&leaf)
                            .ok()
                            .and_then(|(_, b)| b.payload);
                        leaves.insert(prev, Some(leaf));
                        match payload {
                            Some(Payload::AcknowledgeDemand(a)) => rec.revises = a.revises,
                            _ => break,
                        }
                    }
                }
            }
        }
        let mut rows = Vec::new();
        // In log order (the map's order).
        for (leaf_index, read) in leaves {
            let leaf = match read {
                Some(l) => l,
                None => self.backend.entry(leaf_index)?.leaf,
            };
            let Some(ev) = self.event(org, p.org_kind, leaf_index, &leaf)? else {
                continue;
            };
            if !kinds.contains(&ev.kind) {
                continue;
            }
            let mut v = ev.json;
            // Purged and withheld rows carry no values at all.
            if !ev.payload.is_empty() {
                v["salt"] = json!(hex::encode(&ev.salt));
                v["payload"] = json!(hex::encode(&ev.payload));
            }
            rows.push(pb::RecordRow {
                leaf_index,
                record_type: ev.kind.into(),
                json: v.to_string(),
                receipt: if receipts {
                    DataBackend::receipt(self.backend.as_ref(), leaf_index)?
                } else {
                    String::new()
                },
            });
        }
        let (origin, size) = self.backend.position()?;
        let (title, description) = match table {
            "demand_plans" => (
                "demand plans",
                "demand plans and their acknowledgements, in log order",
            ),
            _ => ("factory test batches", "factory test batches, in log order"),
        };
        Ok(pb::DataView {
            title: format!("{title} visible to {org}"),
            summary: vec![pb::Fact {
                name: "records".into(),
                json: rows.len().to_string(),
            }],
            tables: vec![pb::Table {
                name: table.into(),
                description: description.into(),
                data_class: "II".into(),
                columns: columns(table),
                rows,
            }],
            origin,
            tree_size: size,
        })
    }
}

#[tonic::async_trait]
impl<B: DataBackend + ChainBackend> pb::supplier_service_server::SupplierService for Supply<B> {
    async fn register_model(
        &self,
        r: tonic::Request<pb::SubmitRequest>,
    ) -> std::result::Result<tonic::Response<pb::SubmitResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            self.submit_typed("register_model", r.into_inner()).await?,
        ))
    }

    async fn publish_demand_plan(
        &self,
        r: tonic::Request<pb::SubmitRequest>,
    ) -> std::result::Result<tonic::Response<pb::SubmitResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            self.submit_typed("publish_demand_plan", r.into_inner())
                .await?,
        ))
    }

    async fn acknowledge_demand(
        &self,
        r: tonic::Request<pb::SubmitRequest>,
    ) -> std::result::Result<tonic::Response<pb::SubmitResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            self.submit_typed("acknowledge_demand", r.into_inner())
                .await?,
        ))
    }

    async fn publish_test_batch(
        &self,
        r: tonic::Request<pb::SubmitRequest>,
    ) -> std::result::Result<tonic::Response<pb::SubmitResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            self.submit_typed("publish_test_batch", r.into_inner())
                .await?,
        ))
    }

    async fn list_demand_plans(
        &self,
        r: tonic::Request<pb::SupplyQuery>,
    ) -> std::result::Result<tonic::Response<pb::DataView>, tonic::Status> {
        let p = crate::auth::layer::principal(r.extensions())?;
        let q = r.get_ref();
        Ok(tonic::Response::new(self.records_view(
            p,
            "demand_plans",
            &q.id,
            q.receipts,
        )?))
    }

    async fn list_test_batches(
        &self,
        r: tonic::Request<pb::SupplyQuery>,
    ) -> std::result::Result<tonic::Response<pb::DataView>, tonic::Status> {
        let p = crate::auth::layer::principal(r.extensions())?;
        let q = r.get_ref();
        Ok(tonic::Response::new(self.records_view(
            p,
            "test_batches",
            &q.id,
            q.receipts,
        )?))
    }

    async fn list_models(
        &self,
        r: tonic::Request<pb::SupplyQuery>,
    ) -> std::result::Result<tonic::Response<pb::DataView>, tonic::Status> {
        let q = r.get_ref();
        Ok(tonic::Response::new(self.models_view(&q.id, q.receipts)?))
    }

    type SyncStream =
        futures::stream::BoxStream<'static, std::result::Result<pb::SyncEvent, tonic::Status>>;

    async fn sync(
        &self,
        r: tonic::Request<pb::SyncRequest>,
    ) -> std::result::Result<tonic::Response<Self::SyncStream>, tonic::Status> {
        use futures::StreamExt as _;
        let p = crate::auth::layer::principal(r.extensions())?;
        let rx = self.sync(p, r.get_ref())?;
        Ok(tonic::Response::new(
            tokio_stream::wrappers::ReceiverStream::new(rx)
                .map(|e| e.map_err(tonic::Status::from))
                .boxed(),
        ))
    }
}
