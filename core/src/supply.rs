//! Supplier collaboration (DOMAIN.md §2.7, §4.4): instrument models, demand plans,
//! acknowledgements and factory test batches. Models are class I; the other three are
//! class II, so their leaves hold who they concern (the access policy the rules and the
//! sync stream need) and a commitment, never their contents.
//!
//! Rules run at apply, like every rule: deterministic and without the private payloads.
//! The payloads' shape is checked where they are accepted ([`decode_demand`],
//! [`decode_ack`], [`decode_batch`], called from [`crate::private::check_payload`]).

use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::contract::{
    Effect, RejectKind, Rejection, SignerInfo, StateView, check_ident, has_role, reject,
};
use crate::metrology::{classes_for, get, instrument_kind, keys, org_of_kind, put, text};
use crate::pb::{self, InstrumentKind, OrgKind};

/// Most suppliers one demand plan is addressed to.
pub const MAX_SUPPLIERS: usize = 16;
/// Most lines of a demand plan or deliveries of an acknowledgement.
pub const MAX_LINES: usize = 100;
/// Most instruments in one factory test batch.
pub const MAX_BATCH: usize = 1000;
/// Most load points per instrument test.
pub const MAX_LOAD_POINTS: usize = 32;

/// A model (key [`keys::model`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRec {
    /// The supplier.
    pub supplier_org: String,
    /// Model id.
    pub model: String,
    /// `InstrumentKind` name.
    pub kind: String,
    /// Accuracy class.
    pub accuracy_class: String,
    /// Description.
    pub description: String,
}

/// A demand plan (key [`keys::demand_plan`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandRec {
    /// Plan id.
    pub plan_id: String,
    /// The grid company that published it.
    pub org: String,
    /// The suppliers it is addressed to.
    pub suppliers: Vec<String>,
    /// Commitment, hex.
    pub commitment: String,
    /// Collection.
    pub collection: String,
}

/// A supplier's current acknowledgement of a plan (key [`keys::demand_ack`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRec {
    /// Plan id.
    pub plan_id: String,
    /// The supplier.
    pub supplier_org: String,
    /// Commitment, hex.
    pub commitment: String,
    /// Collection.
    pub collection: String,
    /// The acknowledgement it revised.
    pub revises: Option<u64>,
}

/// A factory test batch (key [`keys::batch`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRec {
    /// Batch id.
    pub batch_id: String,
    /// The supplier that made and tested the instruments.
    pub supplier_org: String,
    /// The buying grid company.
    pub buyer_org: String,
    /// The instruments.
    pub asset_nos: Vec<String>,
    /// Commitment, hex.
    pub commitment: String,
    /// Collection.
    pub collection: String,
}

fn supplier_signer(
    view: &dyn StateView,
    i: &SignerInfo,
    rule: &'static str,
) -> Result<(), Rejection> {
    if view.org_kind(&i.org_id) != Some(OrgKind::Supplier) || !has_role(i, &["supplier", "admin"]) {
        return Err(reject(
            rule,
            RejectKind::PermissionDenied,
            "only a supplier's supplier or admin keys sign this",
        ));
    }
    Ok(())
}

/// The collection must also include these orgs (the record's other parties), or they
/// could never read what concerns them.
fn collection_includes(
    view: &dyn StateView,
    collection: &str,
    orgs: &[&str],
    why: &str,
) -> Result<(), Rejection> {
    // `check_class_ii` has already refused a missing collection.
    let Some(def) = view.collection(collection) else {
        return Ok(());
    };
    if let Some(o) = orgs.iter().find(|o| !def.members.iter().any(|m| m == *o)) {
        return Err(reject(
            "4.4/collection",
            RejectKind::FailedPrecondition,
            format!("collection {collection:?} does not include {o:?}, {why}"),
        ));
    }
    Ok(())
}

fn class_of(kind: i32, class: &str, what: &str) -> Result<InstrumentKind, Rejection> {
    let k = instrument_kind(kind)?;
    if !classes_for(k).contains(&class) {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!(
                "{what}: accuracy class {class:?} is not one of {:?} for a {}",
                classes_for(k),
                k.as_str_name()
            ),
        ));
    }
    Ok(k)
}

/// Rule `4.4/model`: a supplier registers a model it makes, once.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn register_model(
    view: &dyn StateView,
    i: &SignerInfo,
    m: &pb::RegisterModel,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("model", &m.model)?;
    let kind = class_of(m.kind, &m.accuracy_class, "model")?;
    text("description", &m.description, 256)?;
    supplier_signer(view, i, "4.4/model")?;
    if let Some((leaf, _)) = view.record(&keys::model(&i.org_id, &m.model)) {
        return Err(reject(
            "4.4/model",
            RejectKind::AlreadyExists,
            format!("{} registered model {:?} at leaf {leaf}", i.org_id, m.model),
        ));
    }
    Ok(vec![put(
        keys::model(&i.org_id, &m.model),
        &ModelRec {
            supplier_org: i.org_id.clone(),
            model: m.model.clone(),
            kind: kind.as_str_name().into(),
            accuracy_class: m.accuracy_class.clone(),
            description: m.description.clone(),
        },
    )])
}

/// Rule `4.4/demand`: a demand plan comes only from a grid company and is addressed to
/// registered suppliers that can read it.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn publish_demand(
    view: &dyn StateView,
    i: &SignerInfo,
    body: &pb::TxBody,
    d: &pb::PublishDemandPlan,
) -> Result<Vec<Effect>, Rejection> {
    let rule = "4.4/demand";
    check_ident("plan_id", &d.plan_id)?;
    if view.org_kind(&i.org_id) != Some(OrgKind::GridCompany)
        || !has_role(i, &["operator", "admin"])
    {
        return Err(reject(
            rule,
            RejectKind::PermissionDenied,
            "a demand plan comes only from a grid company's operators and admins",
        ));
    }
    if d.suppliers.is_empty() || d.suppliers.len() > MAX_SUPPLIERS {
        return Err(reject(
            rule,
            RejectKind::Invalid,
            format!(
                "a demand plan is addressed to 1 to {MAX_SUPPLIERS} suppliers, got {}",
                d.suppliers.len()
            ),
        ));
    }
    for (n, s) in d.suppliers.iter().enumerate() {
        check_ident("suppliers", s)?;
        if d.suppliers[..n].contains(s) {
            return Err(reject(
                rule,
                RejectKind::Invalid,
                format!("supplier {s:?} is listed twice"),
            ));
        }
        org_of_kind(view, rule, s, OrgKind::Supplier)?;
    }
    if let Some((leaf, _)) = view.record(&keys::demand_plan(&d.plan_id)) {
        return Err(reject(
            rule,
            RejectKind::AlreadyExists,
            format!("demand plan {:?} exists (leaf {leaf})", d.plan_id),
        ));
    }
    let class = crate::private::class_ii(body).expect("a demand plan is class II");
    let mut effects = crate::private::check_class_ii(view, &class, &i.org_id, &d.plan_id)?;
    let suppliers: Vec<&str> = d.suppliers.iter().map(String::as_str).collect();
    collection_includes(
        view,
        &d.collection,
        &suppliers,
        "to whom the plan is addressed",
    )?;
    effects.push(put(
        keys::demand_plan(&d.plan_id),
        &DemandRec {
            plan_id: d.plan_id.clone(),
            org: i.org_id.clone(),
            suppliers: d.suppliers.clone(),
            commitment: hex::encode(&d.commitment),
            collection: d.collection.clone(),
        },
    ));
    Ok(effects)
}

/// Rule `4.4/ack`: an acknowledgement answers an existing demand plan addressed to the
/// signing supplier; a revision names the supplier's current acknowledgement.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn acknowledge(
    view: &dyn StateView,
    i: &SignerInfo,
    body: &pb::TxBody,
    a: &pb::AcknowledgeDemand,
) -> Result<Vec<Effect>, Rejection> {
    let rule = "4.4/ack";
    check_ident("plan_id", &a.plan_id)?;
    supplier_signer(view, i, rule)?;
    let Some((_, plan)) = get::<DemandRec>(view, &keys::demand_plan(&a.plan_id)) else {
        return Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!("no demand plan {:?}", a.plan_id),
        ));
    };
    if !plan.suppliers.contains(&i.org_id) {
        return Err(reject(
            rule,
            RejectKind::PermissionDenied,
            format!(
                "demand plan {:?} is not addressed to {}",
                a.plan_id, i.org_id
            ),
        ));
    }
    match (
        view.record(&keys::demand_ack(&a.plan_id, &i.org_id)),
        a.revises,
    ) {
        (Some((cur, _)), None) => {
            return Err(reject(
                rule,
                RejectKind::AlreadyExists,
                format!(
                    "{} acknowledged plan {:?} at leaf {cur}; a revision names it in revises",
                    i.org_id, a.plan_id
                ),
            ));
        }
        (Some((cur, _)), Some(r)) if r != cur => {
            return Err(reject(
                rule,
                RejectKind::FailedPrecondition,
                format!("revises names leaf {r}, the current acknowledgement is leaf {cur}"),
            ));
        }
        (None, Some(_)) => {
            return Err(reject(
                rule,
                RejectKind::FailedPrecondition,
                "nothing to revise: no acknowledgement of this plan yet",
            ));
        }
        _ => {}
    }
    let class = crate::private::class_ii(body).expect("an acknowledgement is class II");
    let mut effects = crate::private::check_class_ii(view, &class, &i.org_id, &a.plan_id)?;
    collection_includes(
        view,
        &a.collection,
        &[&plan.org],
        "which published the plan",
    )?;
    effects.push(put(
        keys::demand_ack(&a.plan_id, &i.org_id),
        &AckRec {
            plan_id: a.plan_id.clone(),
            supplier_org: i.org_id.clone(),
            commitment: hex::encode(&a.commitment),
            collection: a.collection.clone(),
            revises: a.revises,
        },
    ));
    Ok(effects)
}

/// Rule `4.4/batch`: a factory test batch comes only from the supplier that made every
/// instrument in it, for the grid company that owns them all.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn publish_batch(
    view: &dyn StateView,
    i: &SignerInfo,
    body: &pb::TxBody,
    b: &pb::PublishTestBatch,
) -> Result<Vec<Effect>, Rejection> {
    let rule = "4.4/batch";
    check_ident("batch_id", &b.batch_id)?;
    check_ident("buyer_org", &b.buyer_org)?;
    supplier_signer(view, i, rule)?;
    org_of_kind(view, rule, &b.buyer_org, OrgKind::GridCompany)?;
    if b.asset_nos.is_empty() || b.asset_nos.len() > MAX_BATCH {
        return Err(reject(
            rule,
            RejectKind::Invalid,
            format!(
                "a batch lists 1 to {MAX_BATCH} instruments, got {}",
                b.asset_nos.len()
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in &b.asset_nos {
        check_ident("asset_nos", a)?;
        if !seen.insert(a.as_str()) {
            return Err(reject(
                rule,
                RejectKind::Invalid,
                format!("instrument {a:?} is listed twice"),
            ));
        }
        let Some((_, inst)) = get::<crate::metrology::InstrumentRec>(view, &keys::instrument(a))
        else {
            return Err(reject(
                rule,
                RejectKind::FailedPrecondition,
                format!("instrument {a:?} is not registered"),
            ));
        };
        if inst.manufacturer_org != i.org_id {
            return Err(reject(
                rule,
                RejectKind::PermissionDenied,
                format!(
                    "instrument {a:?} was made by {}, not {}",
                    inst.manufacturer_org, i.org_id
                ),
            ));
        }
        if inst.owner_org != b.buyer_org {
            return Err(reject(
                rule,
                RejectKind::FailedPrecondition,
                format!(
                    "instrument {a:?} belongs to {}, not the buyer {}",
                    inst.owner_org, b.buyer_org
                ),
            ));
        }
    }
    if let Some((leaf, _)) = view.record(&keys::batch(&b.batch_id)) {
        return Err(reject(
            rule,
            RejectKind::AlreadyExists,
            format!("batch {:?} exists (leaf {leaf})", b.batch_id),
        ));
    }
    let class = crate::private::class_ii(body).expect("a test batch is class II");
    let mut effects = crate::private::check_class_ii(view, &class, &i.org_id, &b.batch_id)?;
    collection_includes(view, &b.collection, &[&b.buyer_org], "the buyer")?;
    effects.push(put(
        keys::batch(&b.batch_id),
        &BatchRec {
            batch_id: b.batch_id.clone(),
            supplier_org: i.org_id.clone(),
            buyer_org: b.buyer_org.clone(),
            asset_nos: b.asset_nos.clone(),
            commitment: hex::encode(&b.commitment),
            collection: b.collection.clone(),
        },
    ));
    for a in &b.asset_nos {
        effects.push(put(keys::batch_of(a, &b.batch_id), &b.batch_id));
    }
    Ok(effects)
}

// ---------------------------------------------------------------------------------------
// Payload shapes (checked by the node that accepts the submission)

fn kind_and_class(kind: i32, class: &str, at: &str) -> Result<(), String> {
    let k = InstrumentKind::try_from(kind)
        .ok()
        .filter(|k| *k != InstrumentKind::Unspecified)
        .ok_or_else(|| format!("{at}: the instrument kind is missing or unknown"))?;
    if !classes_for(k).contains(&class) {
        return Err(format!(
            "{at}: accuracy class {class:?} is not one of {:?} for a {}",
            classes_for(k),
            k.as_str_name()
        ));
    }
    Ok(())
}

fn printable(what: &str, v: &str, max: usize) -> Result<(), String> {
    if v.len() > max || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(format!("{what} is at most {max} printable bytes"));
    }
    Ok(())
}

fn month(m: &str) -> bool {
    crate::metrology::day_number(&format!("{m}-01")).is_some() && m.len() == 7
}

/// Decodes and checks a demand plan's contents.
///
/// # Errors
/// What is wrong, naming the line.
pub fn decode_demand(payload: &[u8]) -> Result<pb::DemandPlanBody, String> {
    let d = pb::DemandPlanBody::decode(payload).map_err(|e| e.to_string())?;
    if d.lines.is_empty() || d.lines.len() > MAX_LINES {
        return Err(format!(
            "a plan has 1 to {MAX_LINES} lines, got {}",
            d.lines.len()
        ));
    }
    for (n, l) in d.lines.iter().enumerate() {
        let at = format!("line {}", n + 1);
        kind_and_class(l.kind, &l.accuracy_class, &at)?;
        if !month(&l.month) {
            return Err(format!("{at}: month must be YYYY-MM, got {:?}", l.month));
        }
        if l.quantity == 0 {
            return Err(format!("{at}: quantity must be at least 1"));
        }
    }
    printable("notes", &d.notes, 1024)?;
    Ok(d)
}

/// Decodes and checks an acknowledgement's contents.
///
/// # Errors
/// What is wrong, naming the delivery.
pub fn decode_ack(payload: &[u8]) -> Result<pb::AckBody, String> {
    let a = pb::AckBody::decode(payload).map_err(|e| e.to_string())?;
    printable("production_plan", &a.production_plan, 4096)?;
    if a.deliveries.is_empty() || a.deliveries.len() > MAX_LINES {
        return Err(format!(
            "an acknowledgement has 1 to {MAX_LINES} deliveries, got {}",
            a.deliveries.len()
        ));
    }
    for (n, d) in a.deliveries.iter().enumerate() {
        let at = format!("delivery {}", n + 1);
        kind_and_class(d.kind, &d.accuracy_class, &at)?;
        if d.quantity == 0 {
            return Err(format!("{at}: quantity must be at least 1"));
        }
        if crate::metrology::day_number(&d.date).is_none() {
            return Err(format!("{at}: date must be YYYY-MM-DD, got {:?}", d.date));
        }
    }
    Ok(a)
}

/// Decodes and checks a batch's results against its leaf: exactly one result per listed
/// instrument, valid days and load points.
///
/// # Errors
/// What is wrong, naming the instrument.
pub fn decode_batch(
    payload: &[u8],
    leaf: &pb::PublishTestBatch,
) -> Result<pb::TestBatchResults, String> {
    let r = pb::TestBatchResults::decode(payload).map_err(|e| e.to_string())?;
    let mut listed: std::collections::BTreeSet<&str> =
        leaf.asset_nos.iter().map(String::as_str).collect();
    for t in &r.results {
        if !listed.remove(t.asset_no.as_str()) {
            return Err(format!(
                "result for {:?}: not listed in the batch, or listed twice",
                t.asset_no
            ));
        }
        if crate::metrology::day_number(&t.test_date).is_none() {
            return Err(format!(
                "{}: test_date must be YYYY-MM-DD, got {:?}",
                t.asset_no, t.test_date
            ));
        }
        if t.errors.len() > MAX_LOAD_POINTS {
            return Err(format!(
                "{}: at most {MAX_LOAD_POINTS} load points",
                t.asset_no
            ));
        }
        for e in &t.errors {
            crate::metrology::parse_load_point(&e.load_point)
                .map_err(|why| format!("{}: {why}", t.asset_no))?;
        }
    }
    if let Some(missing) = listed.first() {
        return Err(format!("no result for {missing:?}, which the batch lists"));
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Sync cursors (docs/FORMATS.md §17)

/// Prefix of a sync cursor's text.
pub const CURSOR_PREFIX: &str = "gls1.";

/// A position in one ledger's log: the next leaf to read, pinned to the ledger's origin
/// and to the hash of the leaf before it, so a cursor is refused on another ledger and on
/// a log that was reset or rewritten under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncCursor {
    /// The first 8 bytes of SHA-256(origin).
    pub origin_tag: [u8; 8],
    /// The next leaf index to read.
    pub next: u64,
    /// The first 16 bytes of the leaf hash of leaf `next - 1` (zero when `next` is 0).
    pub prev: [u8; 16],
}

/// The first 8 bytes of SHA-256(origin).
pub fn origin_tag(origin: &str) -> [u8; 8] {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(origin.as_bytes());
    h[..8].try_into().expect("8 of 32 bytes")
}

impl SyncCursor {
    /// The cursor before leaf `next` of `origin`'s log, whose previous leaf hashes to
    /// `prev_leaf_hash` (ignored when `next` is 0).
    pub fn new(origin: &str, next: u64, prev_leaf_hash: &crate::merkle::Hash) -> Self {
        let mut prev = [0u8; 16];
        if next > 0 {
            prev.copy_from_slice(&prev_leaf_hash[..16]);
        }
        Self {
            origin_tag: origin_tag(origin),
            next,
            prev,
        }
    }

    /// `gls1.` followed by base64url (no padding) of origin tag (8) || next (u64 BE) ||
    /// prev (16).
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let mut b = Vec::with_capacity(32);
        b.extend_from_slice(&self.origin_tag);
        b.extend_from_slice(&self.next.to_be_bytes());
        b.extend_from_slice(&self.prev);
        format!(
            "{CURSOR_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        )
    }

    /// Parses a cursor's text.
    ///
    /// # Errors
    /// Text that is not a sync cursor of this version.
    pub fn decode(s: &str) -> Result<Self, String> {
        use base64::Engine as _;
        let bad = || format!("{s:?} is not a gridledger sync cursor ({CURSOR_PREFIX}...)");
        let b = s
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|t| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
            })
            .filter(|b| b.len() == 32)
            .ok_or_else(bad)?;
        Ok(Self {
            origin_tag: b[..8].try_into().expect("8"),
            next: u64::from_be_bytes(b[8..16].try_into().expect("8")),
            prev: b[16..32].try_into().expect("16"),
        })
    }
}
