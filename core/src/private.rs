//! Data classes II and III (DESIGN.md §4): the commitment a class II leaf holds instead of
//! its payload, which payloads are class II, the checks a payload must pass before a node
//! accepts it, and the digests a class III anchor carries.
//!
//! Pure: sealing the payload at rest (with a random nonce and a node's collection key) is
//! the node's business; everything here is what any verifier recomputes.

use prost::Message as _;
use sha2::{Digest as _, Sha256};

use crate::pb::tx_body::Payload;
use crate::pb::{CustomerBinding, ReadingValues, TxBody};

/// Domain separator of class II commitments.
pub const COMMIT_DOMAIN: &[u8] = b"gridledger/commit/v1";
/// Salt length, bytes.
pub const SALT_LEN: usize = 32;
/// Largest class II payload a node accepts, bytes (a day of readings is under 2 KiB).
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Interval values per reading day (96 quarter hours).
pub const INTERVALS_PER_DAY: usize = 96;

/// SHA-256(`gridledger/commit/v1` || salt || payload).
pub fn commitment(salt: &[u8; SALT_LEN], payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(COMMIT_DOMAIN);
    h.update(salt);
    h.update(payload);
    h.finalize().into()
}

/// What a class II transaction declares about its private payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassII<'a> {
    /// The record type (a collection's `record_types` entry).
    pub record_type: &'static str,
    /// The collection whose members' nodes hold the payload.
    pub collection: &'a str,
    /// The commitment in the leaf.
    pub commitment: &'a [u8],
}

/// The class II declaration of a transaction, if its payload type is class II.
pub fn class_ii(body: &TxBody) -> Option<ClassII<'_>> {
    match &body.payload {
        Some(Payload::RecordReading(r)) => Some(ClassII {
            record_type: "reading",
            collection: &r.collection,
            commitment: &r.commitment,
        }),
        Some(Payload::BindCustomer(b)) => Some(ClassII {
            record_type: "binding",
            collection: &b.collection,
            commitment: &b.commitment,
        }),
        Some(Payload::PublishDemandPlan(d)) => Some(ClassII {
            record_type: "demand_plan",
            collection: &d.collection,
            commitment: &d.commitment,
        }),
        Some(Payload::AcknowledgeDemand(a)) => Some(ClassII {
            record_type: "demand_ack",
            collection: &a.collection,
            commitment: &a.commitment,
        }),
        Some(Payload::PublishTestBatch(b)) => Some(ClassII {
            record_type: "test_batch",
            collection: &b.collection,
            commitment: &b.commitment,
        }),
        _ => None,
    }
}

/// Why a private payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivateError {
    /// A class II transaction came without its payload.
    #[error("a {0} is class II: send its salt and payload in private_payload")]
    Missing(&'static str),
    /// A payload came with a class I transaction.
    #[error(
        "private_payload is only for class II transactions (readings, customer bindings, demand plans, acknowledgements, test batches)"
    )]
    Unexpected,
    /// Salt of the wrong length.
    #[error("the salt must be {SALT_LEN} bytes, got {0}")]
    Salt(usize),
    /// Payload over the limit.
    #[error("the private payload is {0} bytes; at most {MAX_PAYLOAD}")]
    TooLarge(usize),
    /// Salt and payload do not hash to the leaf's commitment.
    #[error("salt and payload do not match the transaction's commitment")]
    Mismatch,
    /// The payload does not decode or breaks its shape rules.
    #[error("invalid {0} payload: {1}")]
    Invalid(&'static str, String),
}

/// Checks a class II payload against its transaction: the commitment matches and the
/// payload is a well-formed record of its type. Returns the declaration.
///
/// # Errors
/// What is wrong, as [`PrivateError`].
pub fn check_payload<'a>(
    body: &'a TxBody,
    salt: &[u8],
    payload: &[u8],
) -> Result<ClassII<'a>, PrivateError> {
    let Some(c) = class_ii(body) else {
        return Err(PrivateError::Unexpected);
    };
    let salt: &[u8; SALT_LEN] = salt
        .try_into()
        .map_err(|_| PrivateError::Salt(salt.len()))?;
    if payload.len() > MAX_PAYLOAD {
        return Err(PrivateError::TooLarge(payload.len()));
    }
    if commitment(salt, payload).as_slice() != c.commitment {
        return Err(PrivateError::Mismatch);
    }
    match c.record_type {
        "reading" => {
            drop(decode_reading(payload).map_err(|e| PrivateError::Invalid("reading", e))?)
        }
        "binding" => {
            drop(decode_binding(payload).map_err(|e| PrivateError::Invalid("binding", e))?)
        }
        "demand_plan" => drop(
            crate::supply::decode_demand(payload)
                .map_err(|e| PrivateError::Invalid("demand plan", e))?,
        ),
        "demand_ack" => drop(
            crate::supply::decode_ack(payload)
                .map_err(|e| PrivateError::Invalid("acknowledgement", e))?,
        ),
        "test_batch" => {
            if let Some(Payload::PublishTestBatch(b)) = &body.payload {
                drop(
                    crate::supply::decode_batch(payload, b)
                        .map_err(|e| PrivateError::Invalid("test batch", e))?,
                );
            }
        }
        _ => {}
    }
    Ok(c)
}

/// Largest installation point, bytes.
pub const MAX_INSTALLATION_POINT: usize = 256;

/// Decodes and checks a customer binding: the account is an identifier or empty
/// (vacancy), the installation point is printable text, `from` is a day.
///
/// # Errors
/// What is wrong.
pub fn decode_binding(payload: &[u8]) -> Result<CustomerBinding, String> {
    let b = CustomerBinding::decode(payload).map_err(|e| e.to_string())?;
    // The account is embedded in token scopes (`binding:<asset>:<account>`), so it obeys
    // the identifier rule: no whitespace or ':'.
    if !b.account.is_empty() && !crate::contract::valid_ident(&b.account) {
        return Err(format!(
            "account must be empty (no customer) or 1..={} printable characters without whitespace or ':'",
            crate::contract::MAX_ID_LEN
        ));
    }
    let point = b.installation_point.trim();
    if point.is_empty()
        || b.installation_point.len() > MAX_INSTALLATION_POINT
        || b.installation_point.chars().any(char::is_control)
    {
        return Err(format!(
            "installation_point must be 1..={MAX_INSTALLATION_POINT} printable bytes"
        ));
    }
    if crate::contract::check_day("from", &b.from).is_err() {
        return Err(format!("from must be a day YYYY-MM-DD, got {:?}", b.from));
    }
    Ok(b)
}

/// Decodes and checks a reading's values.
///
/// # Errors
/// What is wrong.
pub fn decode_reading(payload: &[u8]) -> Result<ReadingValues, String> {
    let v = ReadingValues::decode(payload).map_err(|e| e.to_string())?;
    if v.import_wh.len() > INTERVALS_PER_DAY || v.export_wh.len() > INTERVALS_PER_DAY {
        return Err(format!(
            "at most {INTERVALS_PER_DAY} interval values per day, got {} import and {} export",
            v.import_wh.len(),
            v.export_wh.len()
        ));
    }
    // Sums are what views show; an overflow would make them wrap.
    for (what, vals) in [("import", &v.import_wh), ("export", &v.export_wh)] {
        vals.iter()
            .try_fold(0u64, |a, x| a.checked_add(*x))
            .ok_or_else(|| format!("the {what} interval values overflow a 64-bit sum"))?;
    }
    Ok(v)
}

/// A class III document's digests, as the anchor holds them (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256, hex.
    pub sha256: String,
    /// MD5, hex.
    pub md5: String,
    /// Bytes.
    pub size: u64,
}

impl Digests {
    /// Compares these (computed) digests with an anchor's; names the first that differs.
    ///
    /// # Errors
    /// Which value differs, with both values.
    pub fn check(&self, anchor: &crate::pb::AnchorDocument) -> Result<(), String> {
        if self.size != anchor.size {
            return Err(format!(
                "size is {} bytes, the anchor says {}",
                self.size, anchor.size
            ));
        }
        if self.sha256 != anchor.sha256 {
            return Err(format!(
                "SHA-256 is {}, the anchor says {}",
                self.sha256, anchor.sha256
            ));
        }
        // Checked even though SHA-256 matched: a client that trusts only MD5 (the
        // paper's legacy systems) must not be handed a file whose MD5 differs.
        if self.md5 != anchor.md5 {
            return Err(format!(
                "MD5 is {}, the anchor says {}",
                self.md5, anchor.md5
            ));
        }
        Ok(())
    }
}

/// Streaming SHA-256, MD5 and size of a document.
#[derive(Default, Clone)]
pub struct DocumentHasher {
    sha256: Sha256,
    md5: md5::Md5,
    size: u64,
}

impl DocumentHasher {
    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        md5::Digest::update(&mut self.md5, data);
        self.size += data.len() as u64;
    }

    /// Bytes so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digests.
    pub fn finish(self) -> Digests {
        Digests {
            sha256: hex::encode(self.sha256.finalize()),
            md5: hex::encode(md5::Digest::finalize(self.md5)),
            size: self.size,
        }
    }
}

/// Largest document the contracts accept an anchor for (a node's upload limit is its
/// own configuration, at most this).
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 32;

/// Whether `s` is lower-case hex of `bytes` bytes.
pub fn is_hex(s: &str, bytes: usize) -> bool {
    s.len() == bytes * 2
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

// ---------------------------------------------------------------------------------------
// Contract rules (run at apply, like every rule: deterministic, no payload needed)
// ---------------------------------------------------------------------------------------

use crate::contract::{Effect, RejectKind, Rejection, SignerInfo, StateView, has_role, reject};
use crate::metrology::{get, keys, put, text};

/// What the ledger keeps about a class II record (key [`keys::private`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrivateRec {
    /// Record type.
    pub record_type: String,
    /// The org that owns the record (may purge it).
    pub owner_org: String,
    /// The collection.
    pub collection: String,
    /// What it is about (asset number).
    pub subject: String,
}

/// The purge of a class II payload (key [`keys::purged`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PurgeRec {
    /// The leaf whose payload was purged.
    pub leaf_index: u64,
    /// Why.
    pub reason: String,
    /// Who purged it.
    pub purged_by_org: String,
}

/// A customer binding as the ledger keeps it (keys [`keys::binding`], the meter's current
/// one, and [`keys::binding_of`], its history): only the commitment and collection, the
/// payload being class II.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BindingRec {
    /// The commitment, hex.
    pub commitment: String,
    /// The collection.
    pub collection: String,
    /// The binding this one replaced.
    pub replaces: Option<u64>,
}

/// Rules `2.3/*`: a customer binding is written by the meter's owning grid company, is a
/// well-formed class II record, and names the meter's current binding when it has one
/// (so no two bindings are current and the history keeps all of them).
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn bind_customer(
    view: &dyn StateView,
    i: &SignerInfo,
    body: &TxBody,
    b: &crate::pb::BindCustomer,
) -> Result<Vec<Effect>, Rejection> {
    crate::contract::check_ident("asset_no", &b.asset_no)?;
    let Some(owner) = view.instrument_owner(&b.asset_no) else {
        return Err(reject(
            "2.3/instrument",
            RejectKind::FailedPrecondition,
            format!("meter {:?} is not registered", b.asset_no),
        ));
    };
    if owner != i.org_id || !has_role(i, &["operator", "admin"]) {
        return Err(reject(
            "2.3/owner",
            RejectKind::PermissionDenied,
            "customers are bound only by the owning grid company's operators and admins",
        ));
    }
    let class = class_ii(body).expect("a binding is class II");
    let mut effects = check_class_ii(view, &class, &owner, &b.asset_no)?;
    let rule = "2.3/binding";
    match (view.record(&keys::binding(&b.asset_no)), b.replaces) {
        (Some((cur, _)), None) => {
            return Err(reject(
                rule,
                RejectKind::AlreadyExists,
                format!(
                    "meter {} is bound by leaf {cur}; a new binding names it in replaces",
                    b.asset_no
                ),
            ));
        }
        (Some((cur, _)), Some(r)) if r != cur => {
            return Err(reject(
                rule,
                RejectKind::FailedPrecondition,
                format!("replaces names leaf {r}, the meter's current binding is leaf {cur}"),
            ));
        }
        (None, Some(_)) => {
            return Err(reject(
                rule,
                RejectKind::FailedPrecondition,
                format!("nothing to replace: meter {} has no binding", b.asset_no),
            ));
        }
        _ => {}
    }
    let hex_c = hex::encode(&b.commitment);
    let rec = BindingRec {
        commitment: hex_c.clone(),
        collection: b.collection.clone(),
        replaces: b.replaces,
    };
    effects.push(put(keys::binding(&b.asset_no), &rec));
    effects.push(put(keys::binding_of(&b.asset_no, &hex_c), &rec));
    Ok(effects)
}

/// A class III anchor (key [`keys::document`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocumentRec {
    /// SHA-256, hex.
    pub sha256: String,
    /// MD5, hex.
    pub md5: String,
    /// Bytes.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// File name.
    pub file_name: String,
    /// Asset, certificate number or org it is about.
    pub subject: String,
    /// The anchoring org.
    pub org: String,
}

/// Rule `4.6/collection`: a class II record names a commitment of the right size and a
/// collection that covers its type and includes its owner (whose nodes must hold it).
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn check_class_ii(
    view: &dyn StateView,
    c: &ClassII<'_>,
    owner_org: &str,
    subject: &str,
) -> Result<Vec<Effect>, Rejection> {
    if c.commitment.len() != 32 {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!(
                "a {} is class II: its commitment must be 32 bytes, got {}",
                c.record_type,
                c.commitment.len()
            ),
        ));
    }
    let rule = "4.6/collection";
    let Some(def) = view.collection(c.collection) else {
        return Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!("no collection {:?}", c.collection),
        ));
    };
    if !def.record_types.iter().any(|t| t == c.record_type) {
        return Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!(
                "collection {:?} does not cover {} records",
                c.collection, c.record_type
            ),
        ));
    }
    if !def.members.iter().any(|m| m == owner_org) {
        return Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!(
                "collection {:?} does not include {owner_org:?}, the record's owner",
                c.collection
            ),
        ));
    }
    let hex_c = hex::encode(c.commitment);
    if view.record(&keys::private(&hex_c)).is_some() {
        return Err(reject(
            "shape",
            RejectKind::AlreadyExists,
            "this commitment is already on the ledger: use a fresh salt",
        ));
    }
    Ok(vec![put(
        keys::private(&hex_c),
        &PrivateRec {
            record_type: c.record_type.into(),
            owner_org: owner_org.into(),
            collection: c.collection.into(),
            subject: subject.into(),
        },
    )])
}

/// Rule `3/purge`: the owner org's admins, or the regulator, purge the payload of a class
/// II record on every replica; the commitment and the leaf stay.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn purge_private(
    view: &dyn StateView,
    i: &SignerInfo,
    p: &crate::pb::PurgePrivate,
) -> Result<Vec<Effect>, Rejection> {
    let rule = "3/purge";
    text("reason", &p.reason, 1024)?;
    if p.reason.trim().is_empty() {
        return Err(reject(rule, RejectKind::Invalid, "a purge needs a reason"));
    }
    if p.commitment.len() != 32 {
        return Err(reject(
            rule,
            RejectKind::Invalid,
            format!("commitment must be 32 bytes, got {}", p.commitment.len()),
        ));
    }
    let hex_c = hex::encode(&p.commitment);
    let Some((leaf, rec)) = get::<PrivateRec>(view, &keys::private(&hex_c)) else {
        return Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!("no class II record with commitment {hex_c}"),
        ));
    };
    let regulator = view.org_kind(&i.org_id) == Some(crate::pb::OrgKind::Regulator)
        && has_role(i, &["regulator", "admin"]);
    if !(regulator || (i.org_id == rec.owner_org && has_role(i, &["admin"]))) {
        return Err(reject(
            rule,
            RejectKind::PermissionDenied,
            format!(
                "only {:?}'s admins or the regulator may purge this record",
                rec.owner_org
            ),
        ));
    }
    if let Some((by, _)) = view.record(&keys::purged(&hex_c)) {
        return Err(reject(
            rule,
            RejectKind::AlreadyExists,
            format!("the payload of leaf {leaf} was purged by leaf {by}"),
        ));
    }
    Ok(vec![
        put(
            keys::purged(&hex_c),
            &PurgeRec {
                leaf_index: leaf,
                reason: p.reason.clone(),
                purged_by_org: i.org_id.clone(),
            },
        ),
        Effect::Purge(leaf),
    ])
}

/// Rule `3/document`: a class III anchor has well-formed digests, a size within the
/// contract limit, printable names, and a SHA-256 not anchored before.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn anchor_document(
    view: &dyn StateView,
    i: &SignerInfo,
    a: &crate::pb::AnchorDocument,
) -> Result<Vec<Effect>, Rejection> {
    let rule = "3/document";
    if !is_hex(&a.sha256, 32) || !is_hex(&a.md5, 16) {
        return Err(reject(
            rule,
            RejectKind::Invalid,
            "sha256 must be 64 and md5 32 lower-case hex digits",
        ));
    }
    if a.size == 0 || a.size > MAX_DOCUMENT_BYTES {
        return Err(reject(
            rule,
            RejectKind::Invalid,
            format!(
                "size must be 1..={MAX_DOCUMENT_BYTES} bytes, got {}",
                a.size
            ),
        ));
    }
    let media_ok = a.media_type.split_once('/').is_some_and(|(t, s)| {
        !t.is_empty()
            && !s.is_empty()
            && a.media_type.len() <= 127
            && a.media_type
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/+-.;=_ ".contains(&b))
    });
    if !media_ok {
        return Err(reject(
            rule,
            RejectKind::Invalid,
            format!(
                "media_type {:?} is not a media type like application/pdf",
                a.media_type
            ),
        ));
    }
    text("file_name", &a.file_name, 255)?;
    if a.file_name.is_empty() || a.file_name.contains(['/', '\\']) {
        return Err(reject(
            rule,
            RejectKind::Invalid,
            "file_name must be a bare file name (no directories)",
        ));
    }
    crate::contract::check_ident("subject", &a.subject)?;
    if !has_role(
        i,
        &["admin", "verifier", "operator", "regulator", "supplier"],
    ) {
        return Err(reject(
            rule,
            RejectKind::PermissionDenied,
            "anchoring documents needs an admin, verifier, operator, regulator or supplier key",
        ));
    }
    if let Some((leaf, _)) = view.record(&keys::document(&a.sha256)) {
        return Err(reject(
            rule,
            RejectKind::AlreadyExists,
            format!("document {} is already anchored at leaf {leaf}", a.sha256),
        ));
    }
    let rec = DocumentRec {
        sha256: a.sha256.clone(),
        md5: a.md5.clone(),
        size: a.size,
        media_type: a.media_type.clone(),
        file_name: a.file_name.clone(),
        subject: a.subject.clone(),
        org: i.org_id.clone(),
    };
    Ok(vec![
        put(keys::document(&a.sha256), &rec),
        put(keys::document_of(&a.subject, &a.sha256), &a.sha256),
    ])
}
