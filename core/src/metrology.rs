//! The metrology domain (DOMAIN.md §2) and its contract rules (§4.2, §4.3): institution
//! qualifications, the traceability chain of standard equipment, instruments, life-cycle
//! certificates, verification plans and disputes.
//!
//! Everything here is a pure function of the state view and the transaction: dates are
//! compared as ISO text, accuracies and errors are integers (ppm and hundredths of a
//! percent), and histories are read in key order, so every replica decides alike.
//!
//! Records are stored as JSON under the keys of [`keys`], each with the index of the
//! leaf that wrote it (see [`StateView::record`]); the node's indexes and read APIs use
//! the same keys, and `gridledger-node reindex` rebuilds them from the log.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::contract::{
    Effect, RecordSource, RejectKind, Rejection, SignerInfo, StateView, check_day, check_id,
    check_ident, has_role, reject,
};
use crate::pb::{self, CertificateKind, EquipmentKind, InstrumentKind, OrgKind, PlanSubject};

/// Longest traceability chain followed (links from an instrument's equipment up to a
/// national standard). Real chains have three or four links; the bound keeps a
/// malformed history from costing more than this many lookups.
pub const MAX_CHAIN: usize = 16;
/// Most scope entries, equipment items, load points or classes in one record.
pub const MAX_ITEMS: usize = 32;
/// Most history entries read for one subject (calibrations of an item, qualifications of
/// an institution).
pub const MAX_HISTORY: usize = 4096;

/// State keys of the metrology records. Identifiers never contain NUL (they are
/// printable), so NUL separates key parts and prefixes scan exactly one subject.
pub mod keys {
    fn k(parts: &[&str]) -> Vec<u8> {
        parts.join("\0").into_bytes()
    }
    /// An instrument's details.
    pub fn instrument(asset: &str) -> Vec<u8> {
        k(&["m/inst", asset])
    }
    /// Authorisations of an institution (prefix).
    pub fn authorisations(inst: &str) -> Vec<u8> {
        k(&["m/auth", inst, ""])
    }
    /// One authorisation.
    pub fn authorisation(inst: &str, number: &str) -> Vec<u8> {
        k(&["m/auth", inst, number])
    }
    /// Accreditations of an institution (prefix).
    pub fn accreditations(inst: &str) -> Vec<u8> {
        k(&["m/accr", inst, ""])
    }
    /// One accreditation.
    pub fn accreditation(inst: &str, number: &str) -> Vec<u8> {
        k(&["m/accr", inst, number])
    }
    /// Personnel certificates of an institution (prefix).
    pub fn personnel_of(inst: &str) -> Vec<u8> {
        k(&["m/pers", inst, ""])
    }
    /// Personnel certificates of one holder (prefix).
    pub fn personnel(inst: &str, holder: &str) -> Vec<u8> {
        k(&["m/pers", inst, holder, ""])
    }
    /// One personnel certificate.
    pub fn personnel_cert(inst: &str, holder: &str, number: &str) -> Vec<u8> {
        k(&["m/pers", inst, holder, number])
    }
    /// One piece of standard equipment.
    pub fn equipment(no: &str) -> Vec<u8> {
        k(&["m/equip", no])
    }
    /// Equipment owned by an org (index, prefix).
    pub fn equipment_of(org: &str) -> Vec<u8> {
        k(&["m/equip-of", org, ""])
    }
    /// Index entry: `org` owns `no`.
    pub fn equipment_owned(org: &str, no: &str) -> Vec<u8> {
        k(&["m/equip-of", org, no])
    }
    /// Calibrations of one item, by date (prefix).
    pub fn calibrations(no: &str) -> Vec<u8> {
        k(&["m/cal", no, ""])
    }
    /// One calibration in an item's history.
    pub fn calibration(no: &str, date: &str, cert_no: &str) -> Vec<u8> {
        k(&["m/cal", no, date, cert_no])
    }
    /// Calibration certificate numbers (uniqueness; the value is the calibration's key).
    pub fn calibration_no(cert_no: &str) -> Vec<u8> {
        k(&["m/cal-no", cert_no])
    }
    /// A calibration the calibrated equipment's owner accepted.
    pub fn calibration_accepted(cert_no: &str) -> Vec<u8> {
        k(&["m/cal-ok", cert_no])
    }
    /// One instrument certificate.
    pub fn certificate(cert_no: &str) -> Vec<u8> {
        k(&["m/cert", cert_no])
    }
    /// Certificates of one instrument, by test date (prefix).
    pub fn certificates_of(asset: &str) -> Vec<u8> {
        k(&["m/certs", asset, ""])
    }
    /// One certificate in an instrument's history.
    pub fn certificate_of(asset: &str, test_date: &str, cert_no: &str) -> Vec<u8> {
        k(&["m/certs", asset, test_date, cert_no])
    }
    /// Certificates an institution issued, by test date (prefix).
    pub fn issued_by(inst: &str) -> Vec<u8> {
        k(&["m/issued", inst, ""])
    }
    /// One certificate in an institution's list.
    pub fn issued(inst: &str, test_date: &str, cert_no: &str) -> Vec<u8> {
        k(&["m/issued", inst, test_date, cert_no])
    }
    /// One verification plan.
    pub fn plan(id: &str) -> Vec<u8> {
        k(&["m/plan", id])
    }
    /// Plans by due date (prefix: all).
    pub const PLANS_BY_DUE: &[u8] = b"m/due\0";
    /// One plan in the due-date index.
    pub fn plan_due(due: &str, id: &str) -> Vec<u8> {
        k(&["m/due", due, id])
    }
    /// One dispute.
    pub fn dispute(id: &str) -> Vec<u8> {
        k(&["m/disp", id])
    }
    /// Disputes of one instrument (prefix).
    pub fn disputes_of(asset: &str) -> Vec<u8> {
        k(&["m/disp-of", asset, ""])
    }
    /// Index entry: dispute `id` is about `asset`.
    pub fn dispute_of(asset: &str, id: &str) -> Vec<u8> {
        k(&["m/disp-of", asset, id])
    }
    /// A class II record, by its commitment (hex): its type, owner and collection,
    /// stamped with the leaf that wrote it.
    pub fn private(commitment_hex: &str) -> Vec<u8> {
        k(&["m/priv", commitment_hex])
    }
    /// The purge of a class II record's payload, by its commitment (hex).
    pub fn purged(commitment_hex: &str) -> Vec<u8> {
        k(&["m/purged", commitment_hex])
    }
    /// A meter's current customer binding (class II), stamped with the binding's leaf.
    pub fn binding(asset: &str) -> Vec<u8> {
        k(&["m/bind", asset])
    }
    /// Every customer binding of one meter (history, prefix).
    pub fn bindings_of(asset: &str) -> Vec<u8> {
        k(&["m/bind-of", asset, ""])
    }
    /// One binding in a meter's history, by its commitment (hex).
    pub fn binding_of(asset: &str, commitment_hex: &str) -> Vec<u8> {
        k(&["m/bind-of", asset, commitment_hex])
    }
    /// A supplier's model.
    pub fn model(supplier: &str, model: &str) -> Vec<u8> {
        k(&["m/model", supplier, model])
    }
    /// Every model (prefix).
    pub const MODELS: &[u8] = b"m/model\0";
    /// A supplier's models (prefix).
    pub fn models_of(supplier: &str) -> Vec<u8> {
        k(&["m/model", supplier, ""])
    }
    /// A demand plan.
    pub fn demand_plan(plan_id: &str) -> Vec<u8> {
        k(&["m/dplan", plan_id])
    }
    /// Every demand plan (prefix).
    pub const DEMAND_PLANS: &[u8] = b"m/dplan\0";
    /// A supplier's current acknowledgement of a plan.
    pub fn demand_ack(plan_id: &str, supplier: &str) -> Vec<u8> {
        k(&["m/dack", plan_id, supplier])
    }
    /// The acknowledgements of a plan (prefix).
    pub fn demand_acks(plan_id: &str) -> Vec<u8> {
        k(&["m/dack", plan_id, ""])
    }
    /// A factory test batch.
    pub fn batch(batch_id: &str) -> Vec<u8> {
        k(&["m/batch", batch_id])
    }
    /// Every factory test batch (prefix; `m/batch-of` sorts after it and does not match).
    pub const BATCHES: &[u8] = b"m/batch\0";
    /// Batches that tested one instrument (prefix).
    pub fn batches_of(asset: &str) -> Vec<u8> {
        k(&["m/batch-of", asset, ""])
    }
    /// Index entry: batch `batch_id` tested `asset`.
    pub fn batch_of(asset: &str, batch_id: &str) -> Vec<u8> {
        k(&["m/batch-of", asset, batch_id])
    }
    /// A class III document's anchor, by SHA-256 (hex).
    pub fn document(sha256_hex: &str) -> Vec<u8> {
        k(&["m/doc", sha256_hex])
    }
    /// Documents about one subject (index, prefix).
    pub fn documents_of(subject: &str) -> Vec<u8> {
        k(&["m/doc-of", subject, ""])
    }
    /// Index entry: document `sha` is about `subject`.
    pub fn document_of(subject: &str, sha256_hex: &str) -> Vec<u8> {
        k(&["m/doc-of", subject, sha256_hex])
    }
}

/// An instrument's details, as the contracts need them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentRec {
    /// Asset number.
    pub asset_no: String,
    /// `InstrumentKind` name.
    pub kind: String,
    /// Accuracy class.
    pub accuracy_class: String,
    /// Manufacturer (supplier org).
    pub manufacturer_org: String,
    /// Model.
    pub model: String,
    /// Owner (grid company).
    pub owner_org: String,
}

/// An authorisation scope entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRec {
    /// `InstrumentKind` name.
    pub kind: String,
    /// Accuracy classes covered.
    pub classes: Vec<String>,
}

/// A government authorisation of an institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorisationRec {
    /// Number.
    pub number: String,
    /// Institution.
    pub institution_org: String,
    /// Issuing org (the regulator).
    pub issuer_org: String,
    /// Scope.
    pub scope: Vec<ScopeRec>,
    /// First valid day.
    pub valid_from: String,
    /// Last valid day.
    pub valid_until: String,
}

/// A laboratory accreditation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccreditationRec {
    /// Number.
    pub number: String,
    /// Institution.
    pub institution_org: String,
    /// Accreditation body.
    pub accreditation_body: String,
    /// Standard (ISO/IEC 17025).
    pub standard: String,
    /// Last valid day.
    pub valid_until: String,
}

/// A verifier's personnel certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonnelRec {
    /// Number.
    pub number: String,
    /// Institution.
    pub institution_org: String,
    /// Holder (verifier id).
    pub holder: String,
    /// `InstrumentKind` names covered.
    pub scope: Vec<String>,
    /// First valid day.
    pub valid_from: String,
    /// Last valid day.
    pub valid_until: String,
}

/// A piece of standard equipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquipmentRec {
    /// Equipment number.
    pub equipment_no: String,
    /// `EquipmentKind` name.
    pub kind: String,
    /// Accuracy grade as written, percent.
    pub accuracy: String,
    /// The grade in ppm (0.05 % = 500).
    pub accuracy_ppm: u32,
    /// Measurement range.
    pub range: String,
    /// Owner org.
    pub owner_org: String,
    /// National standards: last valid day (empty: open).
    pub valid_until: String,
}

impl EquipmentRec {
    /// Whether this is a national primary standard (the top of every chain).
    pub fn is_national(&self) -> bool {
        self.kind == EquipmentKind::NationalStandard.as_str_name()
    }
}

/// A calibration certificate of standard equipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationRec {
    /// Certificate number.
    pub cert_no: String,
    /// Calibrated equipment.
    pub equipment_no: String,
    /// Calibrating (higher-level) equipment.
    pub calibrating_equipment: String,
    /// Calibrating org.
    pub institution_org: String,
    /// Calibration date.
    pub date: String,
    /// Expanded uncertainty, percent.
    pub uncertainty: String,
    /// Last valid day.
    pub valid_until: String,
}

/// An instrument's life-cycle certificate (the fields indexes and checks need; the
/// whole certificate is the leaf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRec {
    /// Certificate number.
    pub cert_no: String,
    /// Instrument.
    pub asset_no: String,
    /// `CertificateKind` name.
    pub kind: String,
    /// Issuing org.
    pub institution_org: String,
    /// Test date.
    pub test_date: String,
    /// Last valid day.
    pub valid_until: String,
    /// Result.
    pub passed: bool,
    /// The dispute a returned-meter certificate answers.
    pub dispute_id: String,
    /// The standard equipment used.
    #[serde(default)]
    pub equipment: Vec<String>,
}

impl CertificateRec {
    /// The record of a certificate transaction (as stored, and as a client rebuilds it
    /// from a proven leaf).
    pub fn of(c: &pb::IssueCertificate) -> Self {
        Self {
            cert_no: c.cert_no.clone(),
            asset_no: c.asset_no.clone(),
            kind: CertificateKind::try_from(c.kind)
                .map(|k| k.as_str_name().to_string())
                .unwrap_or_default(),
            institution_org: c.institution_org.clone(),
            test_date: c.test_date.clone(),
            valid_until: c.valid_until.clone(),
            passed: c.passed,
            dispute_id: c.dispute_id.clone(),
            equipment: c.equipment.clone(),
        }
    }

    /// Whether this certificate attests the instrument's verification (initial,
    /// periodic or returned-meter), as opposed to factory and type-test certificates.
    pub fn is_verification(&self) -> bool {
        is_verification_kind(&self.kind)
    }

    /// Whether it covers `day`: a passed verification with `test_date <= day <=
    /// valid_until`.
    pub fn covers(&self, day: &str) -> bool {
        self.is_verification()
            && self.passed
            && self.test_date.as_str() <= day
            && day <= self.valid_until.as_str()
    }
}

fn is_verification_kind(kind: &str) -> bool {
    [
        CertificateKind::InitialVerification,
        CertificateKind::PeriodicVerification,
        CertificateKind::ReturnedMeter,
    ]
    .iter()
    .any(|k| k.as_str_name() == kind)
}

/// A verification plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRec {
    /// Plan id.
    pub plan_id: String,
    /// `PlanSubject` name.
    pub subject_kind: String,
    /// Subject id (asset number, equipment number or org id).
    pub subject_id: String,
    /// What is due.
    pub task: String,
    /// Due date.
    pub due_date: String,
    /// Scheduling org.
    pub owner_org: String,
}

/// A resident's dispute of a meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeRec {
    /// Dispute id.
    pub dispute_id: String,
    /// The disputed meter.
    pub asset_no: String,
    /// The resident account.
    pub account: String,
    /// Why.
    pub reason: String,
    /// The grid company that recorded it.
    pub opened_by: String,
    /// The returned-meter certificate that answered it, once answered.
    pub resolved_by: Option<String>,
}

/// Reads a typed record.
pub fn get<T: DeserializeOwned>(view: &dyn RecordSource, key: &[u8]) -> Option<(u64, T)> {
    let (leaf, v) = view.record(key)?;
    serde_json::from_slice(&v).ok().map(|t| (leaf, t))
}

/// Reads every typed record under a prefix (at most [`MAX_HISTORY`]), in key order.
pub fn list<T: DeserializeOwned>(view: &dyn RecordSource, prefix: &[u8]) -> Vec<(u64, T)> {
    view.records(prefix, MAX_HISTORY)
        .into_iter()
        .filter_map(|(_, leaf, v)| serde_json::from_slice(&v).ok().map(|t| (leaf, t)))
        .collect()
}

pub(crate) fn put<T: Serialize>(key: Vec<u8>, value: &T) -> Effect {
    Effect::Record(
        key,
        serde_json::to_vec(value).expect("plain records serialise"),
    )
}

// ---------------------------------------------------------------------------------------
// Calendar days

/// The day number (days since 1970-01-01) of a valid `YYYY-MM-DD`, or `None`.
pub fn day_number(day: &str) -> Option<i64> {
    let b = day.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = &day[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The `YYYY-MM-DD` of a day number.
pub fn day_string(n: i64) -> String {
    let z = n + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The days of `[from, to]` that no passed verification certificate covers, as
/// inclusive ranges, given the instrument's certificates. A verification supersedes
/// the ones tested before it: a pass covers from its test date to its valid-until or
/// the day before the next verification, whichever comes first, so a later failed
/// verification ends the coverage of an earlier pass.
pub fn uncovered(certs: &[CertificateRec], from: &str, to: &str) -> Vec<(String, String)> {
    let (Some(a), Some(b)) = (day_number(from), day_number(to)) else {
        return vec![(from.to_string(), to.to_string())];
    };
    let mut verifications: Vec<(i64, i64, bool)> = certs
        .iter()
        .filter(|c| c.is_verification())
        .filter_map(|c| {
            Some((
                day_number(&c.test_date)?,
                day_number(&c.valid_until)?,
                c.passed,
            ))
        })
        .collect();
    verifications.sort_unstable();
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for (i, (start, until, passed)) in verifications.iter().enumerate() {
        if !passed {
            continue;
        }
        let next = verifications[i + 1..]
            .iter()
            .map(|v| v.0)
            .find(|d| d > start)
            .map_or(i64::MAX, |d| d - 1);
        spans.push((*start, (*until).min(next)));
    }
    let mut gaps = Vec::new();
    let mut next = a;
    for (s, e) in spans {
        if next > b {
            break;
        }
        if s > next {
            gaps.push((next, (s - 1).min(b)));
        }
        next = next.max(e + 1);
    }
    if next <= b {
        gaps.push((next, b));
    }
    gaps.into_iter()
        .filter(|(s, e)| s <= e)
        .map(|(s, e)| (day_string(s), day_string(e)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Accuracy classes and error limits

/// An unsigned decimal with at most `places` decimals, scaled by 10^places, exactly
/// ("0.05" with 4 places is 500). No sign, exponent or spaces; at most 6 integer digits.
pub fn decimal(s: &str, places: u32) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) if !f.is_empty() => (i, f),
        Some(_) => return None,
        None => (s, ""),
    };
    if int.is_empty()
        || int.len() > 6
        || frac.len() > places as usize
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut v: u64 = int.parse().ok()?;
    for i in 0..places as usize {
        v = v * 10 + frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
    }
    Some(v)
}

/// A decimal percent ("0.05", "1", "0.2") in ppm, exactly: above 0, at most 100 %, at
/// most 4 decimals.
pub fn percent_ppm(s: &str) -> Option<u32> {
    decimal(s, 4)
        .filter(|p| (1..=1_000_000).contains(p))
        .map(|p| p as u32)
}

/// Meter classes: IEC 62053-22 (0.2S, 0.5S), IEC 62053-21 (1, 2) and EN 50470-3 (A, B, C,
/// D). Transformer classes: IEC 61869-2/-3.
pub const METER_CLASSES: &[&str] = &["0.2S", "0.5S", "1", "2", "A", "B", "C", "D"];
/// Current-transformer classes.
pub const CT_CLASSES: &[&str] = &["0.1", "0.2", "0.2S", "0.5", "0.5S"];
/// Voltage-transformer classes.
pub const VT_CLASSES: &[&str] = &["0.1", "0.2", "0.5"];

/// An `InstrumentKind` value's short name (`meter`, `current_transformer`,
/// `voltage_transformer`; empty for an unknown value), as views and events show it.
pub fn kind_name(k: i32) -> String {
    InstrumentKind::try_from(k)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("INSTRUMENT_KIND_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// The classes valid for an instrument kind.
pub fn classes_for(kind: InstrumentKind) -> &'static [&'static str] {
    match kind {
        InstrumentKind::Meter => METER_CLASSES,
        InstrumentKind::CurrentTransformer => CT_CLASSES,
        InstrumentKind::VoltageTransformer => VT_CLASSES,
        InstrumentKind::Unspecified => &[],
    }
}

/// The class index in ppm (the nominal accuracy the 3× rule compares against). EN
/// 50470-3 letters are given the index of the IEC class whose limits they follow: A = 2,
/// B = 1, C = 0.5S, D = 0.2S.
pub fn class_ppm(kind: InstrumentKind, class: &str) -> Option<u32> {
    if !classes_for(kind).contains(&class) {
        return None;
    }
    let numeric = match class {
        "A" => "2",
        "B" => "1",
        "C" => "0.5",
        "D" => "0.2",
        c => c.trim_end_matches('S'),
    };
    percent_ppm(numeric)
}

/// A load point: current as a multiple of the basic/rated current (in thousandths; Imax
/// is `u32::MAX`) and whether the power factor is unity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPoint {
    /// Current in thousandths of Ib/In (1000 = Ib), `u32::MAX` for Imax.
    pub current_milli: u32,
    /// Power factor 1.0 (false: 0.5 inductive or 0.8 capacitive).
    pub unity_pf: bool,
}

/// Parses `"<k>Ib PF<pf>"`, `"<k>In PF<pf>"`, `"Imax PF<pf>"` or `"<p>%In"` (k a decimal
/// multiple, p a percent; pf 1.0, 0.5L or 0.8C; without a PF the point is at PF 1.0,
/// which is how transformer points are written).
///
/// # Errors
/// What is wrong with the text.
pub fn parse_load_point(s: &str) -> Result<LoadPoint, String> {
    let mut parts = s.split_whitespace();
    let current = parts.next().ok_or("empty load point")?;
    let pf = parts.next();
    if parts.next().is_some() {
        return Err(format!("load point {s:?}: expected \"<current> PF<pf>\""));
    }
    let unity_pf = match pf {
        None | Some("PF1.0") | Some("PF1") => true,
        Some("PF0.5L") | Some("PF0.8C") => false,
        Some(p) => {
            return Err(format!(
                "load point {s:?}: power factor {p:?} is not PF1.0, PF0.5L or PF0.8C"
            ));
        }
    };
    let scaled = |k: &str, places: u32| -> Result<u32, String> {
        decimal(k, places)
            .filter(|v| *v < u64::from(u32::MAX))
            .map(|v| v as u32)
            .ok_or_else(|| format!("load point {s:?}: {k:?} is not a number like 0.1"))
    };
    let milli = |k: &str| if k.is_empty() { Ok(1000) } else { scaled(k, 3) };
    let current_milli = if current == "Imax" {
        u32::MAX
    } else if let Some(p) = current.strip_suffix("%In") {
        // A percent of In (tenths of a percent are thousandths of In).
        scaled(p, 1)?
    } else if let Some(k) = current
        .strip_suffix("Ib")
        .or_else(|| current.strip_suffix("In"))
    {
        milli(k)?
    } else {
        return Err(format!(
            "load point {s:?}: current must be like 0.1Ib, In, Imax or 5%In"
        ));
    };
    if current_milli == 0 {
        return Err(format!("load point {s:?}: zero current"));
    }
    Ok(LoadPoint {
        current_milli,
        unity_pf,
    })
}

/// The error limit, in hundredths of a percent, of an instrument of `kind` and `class` at
/// a load point. Meters follow IEC 62053-21/-22 (wider limits at low current, and at low
/// current with a reactive power factor); current transformers the ratio-error limits of
/// IEC 61869-2 (from the largest tabulated point at or below the current); voltage
/// transformers the class index (IEC 61869-3, 80–120 % of rated voltage).
///
/// # Errors
/// A load point the class does not define (below its lowest current).
pub fn error_limit_centi(kind: InstrumentKind, class: &str, lp: LoadPoint) -> Result<i32, String> {
    let c = lp.current_milli;
    let below = |what: &str| Err(format!("class {class} defines no error limit below {what}"));
    match kind {
        InstrumentKind::Meter => {
            // (lowest current, start of the nominal range, low limit, nominal limit) for
            // unity and reactive power factor.
            let (s_class, low_unity, nom_unity, low_pf, nom_pf) = match class {
                "0.2S" | "D" => (true, 40, 20, 50, 30),
                "0.5S" | "C" => (true, 100, 50, 100, 60),
                "1" | "B" => (false, 150, 100, 150, 100),
                "2" | "A" => (false, 250, 200, 250, 200),
                _ => return Err(format!("{class:?} is not a meter class")),
            };
            let (min, nominal) = match (s_class, lp.unity_pf) {
                (true, true) => (10, 50),
                (true, false) => (20, 100),
                (false, true) => (50, 100),
                (false, false) => (100, 200),
            };
            if c < min {
                return below(&format!("{}.{:03} x Ib/In", min / 1000, min % 1000));
            }
            Ok(match (c >= nominal, lp.unity_pf) {
                (true, true) => nom_unity,
                (false, true) => low_unity,
                (true, false) => nom_pf,
                (false, false) => low_pf,
            })
        }
        InstrumentKind::CurrentTransformer => {
            // (current in thousandths of In, limit) ascending.
            let table: &[(u32, i32)] = match class {
                "0.1" => &[(50, 40), (200, 20), (1000, 10)],
                "0.2" => &[(50, 75), (200, 35), (1000, 20)],
                "0.5" => &[(50, 150), (200, 75), (1000, 50)],
                "0.2S" => &[(10, 75), (50, 35), (200, 20)],
                "0.5S" => &[(10, 150), (50, 75), (200, 50)],
                _ => return Err(format!("{class:?} is not a current-transformer class")),
            };
            table
                .iter()
                .rev()
                .find(|(at, _)| c >= *at)
                .map(|(_, l)| *l)
                .ok_or(())
                .or_else(|()| below(&format!("{}% In", table[0].0 / 10)))
        }
        InstrumentKind::VoltageTransformer => {
            let ppm = class_ppm(kind, class)
                .ok_or_else(|| format!("{class:?} is not a voltage-transformer class"))?;
            Ok((ppm / 100) as i32)
        }
        InstrumentKind::Unspecified => Err("instrument kind is unspecified".into()),
    }
}

// ---------------------------------------------------------------------------------------
// The traceability chain

/// One link of a traceability chain, as [`chain`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The equipment.
    pub equipment: EquipmentRec,
    /// Its leaf.
    pub equipment_leaf: u64,
    /// The calibration in force on the day (None for the national standard).
    pub calibration: Option<(u64, CalibrationRec)>,
}

/// The calibration of `equipment_no` (owned by `owner`) in force on `day`: the latest
/// with `date <= day` among those the owner issued itself or accepted (rule
/// `4.3/acceptance`).
pub fn calibration_on(
    view: &dyn RecordSource,
    equipment_no: &str,
    owner: &str,
    day: &str,
) -> Option<(u64, CalibrationRec)> {
    list::<CalibrationRec>(view, &keys::calibrations(equipment_no))
        .into_iter()
        .rfind(|(_, c)| {
            c.date.as_str() <= day
                && (c.institution_org == owner
                    || view
                        .record(&keys::calibration_accepted(&c.cert_no))
                        .is_some())
        })
}

/// The traceability chain of `equipment_no` on `day`, from the item up to a national
/// standard. Every link must be in force on `day`: the item's latest calibration on or
/// before `day` must not have expired, and so on up to a national standard that has not
/// expired either.
///
/// # Errors
/// Which link is missing or expired, and when.
pub fn chain(view: &dyn RecordSource, equipment_no: &str, day: &str) -> Result<Vec<Link>, String> {
    let mut links: Vec<Link> = Vec::new();
    let mut at = equipment_no.to_string();
    for _ in 0..MAX_CHAIN {
        let (leaf, eq) = get::<EquipmentRec>(view, &keys::equipment(&at))
            .ok_or_else(|| format!("equipment {at:?} is not registered"))?;
        if eq.is_national() {
            if !eq.valid_until.is_empty() && day > eq.valid_until.as_str() {
                return Err(format!(
                    "national standard {at:?} expired on {} (before {day})",
                    eq.valid_until
                ));
            }
            links.push(Link {
                equipment: eq,
                equipment_leaf: leaf,
                calibration: None,
            });
            return Ok(links);
        }
        let (cal_leaf, cal) = calibration_on(view, &at, &eq.owner_org, day).ok_or_else(|| {
            format!("equipment {at:?} has no calibration on or before {day} that its owner issued or accepted")
        })?;
        if day > cal.valid_until.as_str() {
            return Err(format!(
                "equipment {at:?}: calibration {} expired on {} (before {day})",
                cal.cert_no, cal.valid_until
            ));
        }
        let next = cal.calibrating_equipment.clone();
        links.push(Link {
            equipment: eq,
            equipment_leaf: leaf,
            calibration: Some((cal_leaf, cal)),
        });
        at = next;
    }
    Err(format!(
        "the chain of {equipment_no:?} does not reach a national standard within {MAX_CHAIN} links"
    ))
}

// ---------------------------------------------------------------------------------------
// Contract rules

pub(crate) fn org_of_kind(
    view: &dyn StateView,
    rule: &'static str,
    org: &str,
    kind: OrgKind,
) -> Result<(), Rejection> {
    match view.org_kind(org) {
        Some(k) if k == kind => Ok(()),
        Some(k) => Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!(
                "org {org:?} is a {}, not a {}",
                k.as_str_name(),
                kind.as_str_name()
            ),
        )),
        None => Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!("org {org:?} is not registered"),
        )),
    }
}

pub(crate) fn instrument_kind(v: i32) -> Result<InstrumentKind, Rejection> {
    match InstrumentKind::try_from(v) {
        Ok(k) if k != InstrumentKind::Unspecified => Ok(k),
        _ => Err(reject(
            "shape",
            RejectKind::Invalid,
            "instrument kind is missing or unknown",
        )),
    }
}

fn valid_period(from: &str, until: &str) -> Result<(), Rejection> {
    if !from.is_empty() {
        check_day("valid_from", from)?;
    }
    check_day("valid_until", until)?;
    if !from.is_empty() && until < from {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "valid_until is before valid_from",
        ));
    }
    Ok(())
}

fn within(day: &str, from: &str, until: &str) -> bool {
    (from.is_empty() || from <= day) && day <= until
}

pub(crate) fn text(what: &str, v: &str, max: usize) -> Result<(), Rejection> {
    if v.len() > max || v.chars().any(char::is_control) {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!("{what} is at most {max} printable bytes"),
        ));
    }
    Ok(())
}

fn only_regulator(i: &SignerInfo, what: &str) -> Result<(), Rejection> {
    if has_role(i, &["regulator"]) {
        Ok(())
    } else {
        Err(reject(
            "qualification",
            RejectKind::PermissionDenied,
            format!("only the regulator records {what}"),
        ))
    }
}

/// Checks an instrument registration's metrology fields (rule `instrument`) and returns
/// the details record to store.
///
/// # Errors
/// Unknown kind, a class the kind does not have, or a manufacturer that is no supplier.
pub fn check_instrument(
    view: &dyn StateView,
    r: &pb::RegisterInstrument,
) -> Result<InstrumentRec, Rejection> {
    let kind = instrument_kind(r.kind)?;
    if class_ppm(kind, &r.accuracy_class).is_none() {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!(
                "accuracy class {:?} is not one of {:?} for a {}",
                r.accuracy_class,
                classes_for(kind),
                kind.as_str_name()
            ),
        ));
    }
    check_ident("manufacturer_org", &r.manufacturer_org)?;
    check_id("model", &r.model)?;
    text("ratings", &r.ratings, 256)?;
    org_of_kind(view, "instrument", &r.manufacturer_org, OrgKind::Supplier)?;
    // Instruments are owned by grid companies (DOMAIN.md §2.3).
    org_of_kind(view, "instrument", &r.owner_org, OrgKind::GridCompany)?;
    Ok(InstrumentRec {
        asset_no: r.asset_no.clone(),
        kind: kind.as_str_name().into(),
        accuracy_class: r.accuracy_class.clone(),
        manufacturer_org: r.manufacturer_org.clone(),
        model: r.model.clone(),
        owner_org: r.owner_org.clone(),
    })
}

/// Rule `qualification`: the regulator grants an authorisation to an institution.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn grant_authorisation(
    view: &dyn StateView,
    i: &SignerInfo,
    a: &pb::GrantAuthorisation,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("number", &a.number)?;
    check_ident("institution_org", &a.institution_org)?;
    valid_period(&a.valid_from, &a.valid_until)?;
    if a.valid_from.is_empty() {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "valid_from is required",
        ));
    }
    if a.scope.is_empty() || a.scope.len() > MAX_ITEMS {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!("scope must have 1..={MAX_ITEMS} entries"),
        ));
    }
    let mut scope = Vec::with_capacity(a.scope.len());
    for s in &a.scope {
        let kind = instrument_kind(s.kind)?;
        if s.accuracy_classes.is_empty()
            || s.accuracy_classes.len() > MAX_ITEMS
            || s.accuracy_classes
                .iter()
                .any(|c| class_ppm(kind, c).is_none())
        {
            return Err(reject(
                "shape",
                RejectKind::Invalid,
                format!(
                    "scope for {} must list classes among {:?}",
                    kind.as_str_name(),
                    classes_for(kind)
                ),
            ));
        }
        scope.push(ScopeRec {
            kind: kind.as_str_name().into(),
            classes: s.accuracy_classes.clone(),
        });
    }
    only_regulator(i, "authorisations")?;
    org_of_kind(
        view,
        "qualification",
        &a.institution_org,
        OrgKind::Institution,
    )?;
    let key = keys::authorisation(&a.institution_org, &a.number);
    if view.record(&key).is_some() {
        return Err(reject(
            "qualification",
            RejectKind::AlreadyExists,
            format!(
                "authorisation {:?} of {:?} exists",
                a.number, a.institution_org
            ),
        ));
    }
    Ok(vec![put(
        key,
        &AuthorisationRec {
            number: a.number.clone(),
            institution_org: a.institution_org.clone(),
            issuer_org: i.org_id.clone(),
            scope,
            valid_from: a.valid_from.clone(),
            valid_until: a.valid_until.clone(),
        },
    )])
}

/// Rule `qualification`: the regulator records an institution's accreditation.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn record_accreditation(
    view: &dyn StateView,
    i: &SignerInfo,
    a: &pb::RecordAccreditation,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("number", &a.number)?;
    check_ident("institution_org", &a.institution_org)?;
    check_id("accreditation_body", &a.accreditation_body)?;
    check_id("standard", &a.standard)?;
    check_day("valid_until", &a.valid_until)?;
    only_regulator(i, "accreditations")?;
    org_of_kind(
        view,
        "qualification",
        &a.institution_org,
        OrgKind::Institution,
    )?;
    let key = keys::accreditation(&a.institution_org, &a.number);
    if view.record(&key).is_some() {
        return Err(reject(
            "qualification",
            RejectKind::AlreadyExists,
            format!(
                "accreditation {:?} of {:?} exists",
                a.number, a.institution_org
            ),
        ));
    }
    Ok(vec![put(
        key,
        &AccreditationRec {
            number: a.number.clone(),
            institution_org: a.institution_org.clone(),
            accreditation_body: a.accreditation_body.clone(),
            standard: a.standard.clone(),
            valid_until: a.valid_until.clone(),
        },
    )])
}

/// Rule `qualification`: the regulator records a verifier's personnel certificate.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn register_personnel(
    view: &dyn StateView,
    i: &SignerInfo,
    p: &pb::RegisterPersonnelCertificate,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("number", &p.number)?;
    check_ident("institution_org", &p.institution_org)?;
    check_ident("holder", &p.holder)?;
    valid_period(&p.valid_from, &p.valid_until)?;
    if p.scope.is_empty() || p.scope.len() > MAX_ITEMS {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "scope must name 1.. instrument kinds",
        ));
    }
    let scope = p
        .scope
        .iter()
        .map(|k| instrument_kind(*k).map(|k| k.as_str_name().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    only_regulator(i, "personnel certificates")?;
    org_of_kind(
        view,
        "qualification",
        &p.institution_org,
        OrgKind::Institution,
    )?;
    let key = keys::personnel_cert(&p.institution_org, &p.holder, &p.number);
    if view.record(&key).is_some() {
        return Err(reject(
            "qualification",
            RejectKind::AlreadyExists,
            format!("personnel certificate {:?} exists", p.number),
        ));
    }
    Ok(vec![put(
        key,
        &PersonnelRec {
            number: p.number.clone(),
            institution_org: p.institution_org.clone(),
            holder: p.holder.clone(),
            scope,
            valid_from: p.valid_from.clone(),
            valid_until: p.valid_until.clone(),
        },
    )])
}

/// Rule `equipment`: national standards are registered by the regulator in its own name;
/// other standard equipment by its owner institution's admin or verifiers.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn register_equipment(
    view: &dyn StateView,
    i: &SignerInfo,
    e: &pb::RegisterEquipment,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("equipment_no", &e.equipment_no)?;
    check_ident("owner_org", &e.owner_org)?;
    text("range", &e.range, 256)?;
    let kind = match EquipmentKind::try_from(e.kind) {
        Ok(k) if k != EquipmentKind::Unspecified => k,
        _ => {
            return Err(reject(
                "shape",
                RejectKind::Invalid,
                "equipment kind is missing or unknown",
            ));
        }
    };
    let ppm = percent_ppm(&e.accuracy).ok_or_else(|| {
        reject(
            "shape",
            RejectKind::Invalid,
            format!(
                "accuracy {:?} is not a percent like 0.05 (at most 4 decimals)",
                e.accuracy
            ),
        )
    })?;
    let national = kind == EquipmentKind::NationalStandard;
    if !e.valid_until.is_empty() {
        if !national {
            return Err(reject(
                "shape",
                RejectKind::Invalid,
                "only national standards carry their own valid_until; other equipment is valid through its calibrations",
            ));
        }
        check_day("valid_until", &e.valid_until)?;
    }
    if i.org_id != e.owner_org {
        return Err(reject(
            "equipment",
            RejectKind::PermissionDenied,
            "equipment is registered by its owner",
        ));
    }
    if national {
        if !has_role(i, &["regulator"]) {
            return Err(reject(
                "equipment",
                RejectKind::PermissionDenied,
                "only the regulator registers national standards",
            ));
        }
    } else {
        if !has_role(i, &["admin", "verifier"]) {
            return Err(reject(
                "equipment",
                RejectKind::PermissionDenied,
                "standard equipment is registered by its institution's admin or verifiers",
            ));
        }
        org_of_kind(view, "equipment", &e.owner_org, OrgKind::Institution)?;
    }
    let key = keys::equipment(&e.equipment_no);
    if view.record(&key).is_some() {
        return Err(reject(
            "equipment",
            RejectKind::AlreadyExists,
            format!("equipment {:?} is already registered", e.equipment_no),
        ));
    }
    let rec = EquipmentRec {
        equipment_no: e.equipment_no.clone(),
        kind: kind.as_str_name().into(),
        accuracy: e.accuracy.clone(),
        accuracy_ppm: ppm,
        range: e.range.clone(),
        owner_org: e.owner_org.clone(),
        valid_until: e.valid_until.clone(),
    };
    Ok(vec![
        put(key, &rec),
        put(
            keys::equipment_owned(&e.owner_org, &e.equipment_no),
            &e.equipment_no,
        ),
    ])
}

/// Rule 4.3: a calibration is accepted only if the calibrating equipment is of a higher
/// level (strictly better accuracy) than the calibrated equipment and is itself valid,
/// up to a national standard, on the calibration date.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn issue_calibration(
    view: &dyn StateView,
    i: &SignerInfo,
    c: &pb::IssueCalibration,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("cert_no", &c.cert_no)?;
    check_ident("equipment_no", &c.equipment_no)?;
    check_ident("calibrating_equipment", &c.calibrating_equipment)?;
    check_ident("institution_org", &c.institution_org)?;
    check_day("date", &c.date)?;
    check_day("valid_until", &c.valid_until)?;
    if c.valid_until < c.date {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "valid_until is before the calibration date",
        ));
    }
    if percent_ppm(&c.uncertainty).is_none() {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!(
                "uncertainty {:?} is not a percent like 0.005",
                c.uncertainty
            ),
        ));
    }
    if i.org_id != c.institution_org || !has_role(i, &["verifier", "regulator"]) {
        return Err(reject(
            "4.3/calibration",
            RejectKind::PermissionDenied,
            "calibrations are issued by the calibrating org's verifiers, in its own name",
        ));
    }
    if view.record(&keys::calibration_no(&c.cert_no)).is_some() {
        return Err(reject(
            "4.3/calibration",
            RejectKind::AlreadyExists,
            format!("calibration certificate {:?} exists", c.cert_no),
        ));
    }
    let missing = |no: &str| {
        reject(
            "4.3/calibration",
            RejectKind::FailedPrecondition,
            format!("equipment {no:?} is not registered"),
        )
    };
    let (_, target) = get::<EquipmentRec>(view, &keys::equipment(&c.equipment_no))
        .ok_or_else(|| missing(&c.equipment_no))?;
    let (_, by) = get::<EquipmentRec>(view, &keys::equipment(&c.calibrating_equipment))
        .ok_or_else(|| missing(&c.calibrating_equipment))?;
    if target.is_national() {
        return Err(reject(
            "4.3/level",
            RejectKind::FailedPrecondition,
            "a national standard is the top of the chain; nothing calibrates it here",
        ));
    }
    if by.owner_org != c.institution_org {
        return Err(reject(
            "4.3/calibration",
            RejectKind::PermissionDenied,
            format!(
                "equipment {:?} belongs to {:?}; an org calibrates with its own equipment",
                by.equipment_no, by.owner_org
            ),
        ));
    }
    if by.accuracy_ppm >= target.accuracy_ppm {
        return Err(reject(
            "4.3/level",
            RejectKind::FailedPrecondition,
            format!(
                "calibrating equipment {:?} (accuracy {} %) is not of a higher level than {:?} ({} %)",
                by.equipment_no, by.accuracy, target.equipment_no, target.accuracy
            ),
        ));
    }
    chain(view, &by.equipment_no, &c.date).map_err(|e| {
        reject(
            "4.3/equipment",
            RejectKind::FailedPrecondition,
            format!("calibrating equipment not valid on {}: {e}", c.date),
        )
    })?;
    let rec = CalibrationRec {
        cert_no: c.cert_no.clone(),
        equipment_no: c.equipment_no.clone(),
        calibrating_equipment: c.calibrating_equipment.clone(),
        institution_org: c.institution_org.clone(),
        date: c.date.clone(),
        uncertainty: c.uncertainty.clone(),
        valid_until: c.valid_until.clone(),
    };
    let key = keys::calibration(&c.equipment_no, &c.date, &c.cert_no);
    Ok(vec![
        put(
            keys::calibration_no(&c.cert_no),
            &String::from_utf8_lossy(&key),
        ),
        put(key, &rec),
    ])
}

/// Rule 4.2 (and the certificate kinds' issuers): checks a life-cycle certificate and
/// returns its effects (its records; the caller adds the current-certificate index for
/// verification kinds).
///
/// - Factory: from the instrument's manufacturer (role `supplier`), in its own name.
/// - Type test: from an institution authorised for the instrument's kind and class on
///   the test date.
/// - Initial, periodic and returned-meter verification: from an institution's verifier,
///   and on the test date the institution's authorisation covers the instrument's kind
///   and class, the verifier's personnel certificate is valid and covers the kind, every
///   piece of standard equipment has a valid calibration whose chain reaches a national
///   standard with no expired link, each is at least 3× more accurate than the
///   instrument's class, and the result is pass exactly when every load-point error is
///   within the class limit. A returned-meter certificate answers an open dispute of the
///   instrument.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn issue_certificate(
    view: &dyn StateView,
    i: &SignerInfo,
    c: &pb::IssueCertificate,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("cert_no", &c.cert_no)?;
    check_ident("asset_no", &c.asset_no)?;
    check_ident("institution_org", &c.institution_org)?;
    check_day("test_date", &c.test_date)?;
    check_day("valid_until", &c.valid_until)?;
    if c.valid_until < c.test_date {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "valid_until is before test_date",
        ));
    }
    let kind = match CertificateKind::try_from(c.kind) {
        Ok(k) if k != CertificateKind::Unspecified => k,
        _ => {
            return Err(reject(
                "shape",
                RejectKind::Invalid,
                "certificate kind is missing or unknown",
            ));
        }
    };
    if c.errors.len() > MAX_ITEMS || c.equipment.len() > MAX_ITEMS {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!("at most {MAX_ITEMS} load points and {MAX_ITEMS} equipment items"),
        ));
    }
    if (kind == CertificateKind::ReturnedMeter) == c.dispute_id.is_empty() {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "dispute_id is set on returned-meter certificates, and only on them",
        ));
    }
    let (_, inst) =
        get::<InstrumentRec>(view, &keys::instrument(&c.asset_no)).ok_or_else(|| {
            reject(
                "4.2/instrument",
                RejectKind::FailedPrecondition,
                format!("instrument {:?} is not registered", c.asset_no),
            )
        })?;
    if view.record(&keys::certificate(&c.cert_no)).is_some() {
        return Err(reject(
            "4.2/certificate",
            RejectKind::AlreadyExists,
            format!("certificate {:?} exists", c.cert_no),
        ));
    }
    let ikind = InstrumentKind::from_str_name(&inst.kind).unwrap_or(InstrumentKind::Unspecified);
    let mut effects = Vec::new();
    match kind {
        CertificateKind::Factory => {
            if i.org_id != inst.manufacturer_org
                || c.institution_org != inst.manufacturer_org
                || !has_role(i, &["supplier", "admin"])
            {
                return Err(reject(
                    "4.2/factory",
                    RejectKind::PermissionDenied,
                    format!(
                        "a factory certificate comes from the manufacturer {:?}, in its own name",
                        inst.manufacturer_org
                    ),
                ));
            }
        }
        _ => {
            if i.org_id != c.institution_org || !has_role(i, &["verifier"]) {
                return Err(reject(
                    "4.2/institution",
                    RejectKind::PermissionDenied,
                    "an institution's verifiers issue certificates only in its own name",
                ));
            }
            authorised(
                view,
                &c.institution_org,
                ikind,
                &inst.accuracy_class,
                &c.test_date,
            )?;
        }
    }
    if is_verification_kind(kind.as_str_name()) {
        verification(view, c, &inst, ikind)?;
    }
    if kind == CertificateKind::ReturnedMeter {
        let open = get::<DisputeRec>(view, &keys::dispute(&c.dispute_id))
            .filter(|(_, d)| d.asset_no == c.asset_no);
        let Some((_, mut d)) = open else {
            return Err(reject(
                "4.2/dispute",
                RejectKind::FailedPrecondition,
                format!(
                    "no dispute {:?} is open for instrument {:?}",
                    c.dispute_id, c.asset_no
                ),
            ));
        };
        if let Some(by) = &d.resolved_by {
            return Err(reject(
                "4.2/dispute",
                RejectKind::FailedPrecondition,
                format!("dispute {:?} was already answered by {by:?}", c.dispute_id),
            ));
        }
        d.resolved_by = Some(c.cert_no.clone());
        effects.push(put(keys::dispute(&d.dispute_id), &d));
    }
    let rec = CertificateRec::of(c);
    effects.push(put(keys::certificate(&c.cert_no), &rec));
    effects.push(put(
        keys::certificate_of(&c.asset_no, &c.test_date, &c.cert_no),
        &rec,
    ));
    effects.push(put(
        keys::issued(&c.institution_org, &c.test_date, &c.cert_no),
        &rec,
    ));
    Ok(effects)
}

// The institution holds an authorisation valid on `day` covering kind and class.
fn authorised(
    view: &dyn StateView,
    inst: &str,
    kind: InstrumentKind,
    class: &str,
    day: &str,
) -> Result<(), Rejection> {
    let auths = list::<AuthorisationRec>(view, &keys::authorisations(inst));
    let covers = |a: &AuthorisationRec| {
        a.scope
            .iter()
            .any(|s| s.kind == kind.as_str_name() && s.classes.iter().any(|c| c == class))
    };
    if auths
        .iter()
        .any(|(_, a)| within(day, &a.valid_from, &a.valid_until) && covers(a))
    {
        return Ok(());
    }
    let why = if auths.iter().any(|(_, a)| covers(a)) {
        format!(
            "its authorisations covering {} class {class} are not valid on {day}",
            kind.as_str_name()
        )
    } else {
        format!(
            "no authorisation covers {} class {class}",
            kind.as_str_name()
        )
    };
    Err(reject(
        "4.2/authorisation",
        RejectKind::FailedPrecondition,
        format!("institution {inst:?}: {why}"),
    ))
}

fn verification(
    view: &dyn StateView,
    c: &pb::IssueCertificate,
    inst: &InstrumentRec,
    ikind: InstrumentKind,
) -> Result<(), Rejection> {
    check_ident("verifier", &c.verifier)?;
    check_ident("checker", &c.checker)?;
    if c.verifier == c.checker {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "the checker must be another person than the verifier",
        ));
    }
    let day = c.test_date.as_str();
    let certified = list::<PersonnelRec>(view, &keys::personnel(&c.institution_org, &c.verifier))
        .into_iter()
        .any(|(_, p)| {
            within(day, &p.valid_from, &p.valid_until)
                && p.scope.iter().any(|k| k == ikind.as_str_name())
        });
    if !certified {
        return Err(reject(
            "4.2/personnel",
            RejectKind::FailedPrecondition,
            format!(
                "verifier {:?} of {:?} holds no personnel certificate for {} valid on {day}",
                c.verifier,
                c.institution_org,
                ikind.as_str_name()
            ),
        ));
    }
    if c.equipment.is_empty() {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "a verification certificate names the standard equipment used",
        ));
    }
    let class_ppm = class_ppm(ikind, &inst.accuracy_class).ok_or_else(|| {
        reject(
            "4.2/instrument",
            RejectKind::FailedPrecondition,
            format!("instrument class {:?} is unknown", inst.accuracy_class),
        )
    })?;
    for e in &c.equipment {
        let links = chain(view, e, day).map_err(|why| {
            reject(
                "4.2/equipment",
                RejectKind::FailedPrecondition,
                format!("standard equipment on {day}: {why}"),
            )
        })?;
        let eq = &links[0].equipment;
        // An institution verifies with its own standards: those its accreditation and
        // calibrations cover.
        if eq.owner_org != c.institution_org {
            return Err(reject(
                "4.2/equipment",
                RejectKind::FailedPrecondition,
                format!(
                    "equipment {:?} belongs to {:?}, not to the issuing institution",
                    eq.equipment_no, eq.owner_org
                ),
            ));
        }
        if u64::from(eq.accuracy_ppm) * 3 > u64::from(class_ppm) {
            return Err(reject(
                "4.2/accuracy",
                RejectKind::FailedPrecondition,
                format!(
                    "equipment {:?} (accuracy {} %) is not at least 3x better than class {}",
                    eq.equipment_no, eq.accuracy, inst.accuracy_class
                ),
            ));
        }
    }
    if c.errors.is_empty() {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            "a verification certificate records the error at each load point",
        ));
    }
    let mut outside = None;
    for e in &c.errors {
        let lp = parse_load_point(&e.load_point)
            .map_err(|why| reject("shape", RejectKind::Invalid, why))?;
        let limit = error_limit_centi(ikind, &inst.accuracy_class, lp).map_err(|why| {
            reject(
                "shape",
                RejectKind::Invalid,
                format!("{}: {why}", e.load_point),
            )
        })?;
        if e.error_centi_percent.unsigned_abs() > limit.unsigned_abs() && outside.is_none() {
            outside = Some((e.load_point.clone(), e.error_centi_percent, limit));
        }
    }
    match (c.passed, outside) {
        (true, Some((lp, err, limit))) => Err(reject(
            "4.2/result",
            RejectKind::FailedPrecondition,
            format!(
                "marked pass, but the error at {lp} ({}) exceeds the class {} limit of ±{}",
                centi(err),
                inst.accuracy_class,
                centi(limit)
            ),
        )),
        (false, None) => Err(reject(
            "4.2/result",
            RejectKind::FailedPrecondition,
            format!(
                "marked fail, but every error is within the class {} limits",
                inst.accuracy_class
            ),
        )),
        _ => Ok(()),
    }
}

fn centi(v: i32) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:02} %", a / 100, a % 100)
}

/// Rule `plan`: an instrument's plan is scheduled by its owner, equipment's by its owner,
/// an institution's by the regulator.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn schedule_plan(
    view: &dyn StateView,
    i: &SignerInfo,
    p: &pb::SchedulePlan,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("plan_id", &p.plan_id)?;
    check_ident("subject_id", &p.subject_id)?;
    check_id("task", &p.task)?;
    check_day("due_date", &p.due_date)?;
    let subject = PlanSubject::try_from(p.subject_kind)
        .ok()
        .filter(|s| *s != PlanSubject::Unspecified)
        .ok_or_else(|| {
            reject(
                "shape",
                RejectKind::Invalid,
                "subject_kind is missing or unknown",
            )
        })?;
    let owner = match subject {
        PlanSubject::Instrument => {
            get::<InstrumentRec>(view, &keys::instrument(&p.subject_id)).map(|(_, r)| r.owner_org)
        }
        PlanSubject::Equipment => {
            get::<EquipmentRec>(view, &keys::equipment(&p.subject_id)).map(|(_, r)| r.owner_org)
        }
        PlanSubject::Institution => {
            (view.org_kind(&p.subject_id) == Some(OrgKind::Institution)).then(|| i.org_id.clone())
        }
        PlanSubject::Unspecified => None,
    }
    .ok_or_else(|| {
        reject(
            "plan",
            RejectKind::FailedPrecondition,
            format!(
                "{} {:?} is not registered",
                subject.as_str_name(),
                p.subject_id
            ),
        )
    })?;
    let allowed = match subject {
        PlanSubject::Institution => has_role(i, &["regulator"]),
        _ => i.org_id == owner && has_role(i, &["admin", "operator", "verifier"]),
    };
    if !allowed {
        return Err(reject(
            "plan",
            RejectKind::PermissionDenied,
            "plans are scheduled by the subject's owner (institutions' by the regulator)",
        ));
    }
    if view.record(&keys::plan(&p.plan_id)).is_some() {
        return Err(reject(
            "plan",
            RejectKind::AlreadyExists,
            format!("plan {:?} exists", p.plan_id),
        ));
    }
    let rec = PlanRec {
        plan_id: p.plan_id.clone(),
        subject_kind: subject.as_str_name().into(),
        subject_id: p.subject_id.clone(),
        task: p.task.clone(),
        due_date: p.due_date.clone(),
        owner_org: i.org_id.clone(),
    };
    Ok(vec![
        put(keys::plan(&p.plan_id), &rec),
        put(keys::plan_due(&p.due_date, &p.plan_id), &rec),
    ])
}

/// Rule `dispute`: the owning grid company records a resident's dispute of a meter.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn open_dispute(
    view: &dyn StateView,
    i: &SignerInfo,
    d: &pb::OpenDispute,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("dispute_id", &d.dispute_id)?;
    check_ident("asset_no", &d.asset_no)?;
    check_ident("account", &d.account)?;
    text("reason", &d.reason, 1024)?;
    let (_, inst) =
        get::<InstrumentRec>(view, &keys::instrument(&d.asset_no)).ok_or_else(|| {
            reject(
                "dispute",
                RejectKind::FailedPrecondition,
                format!("meter {:?} is not registered", d.asset_no),
            )
        })?;
    // The grid company's operators record a dispute for a resident; a resident opening
    // one through the gateway is recorded by the org's token key, which vouches for the
    // resident's identity in every token it signs (the dispute names the account).
    if i.org_id != inst.owner_org
        || !has_role(i, &["operator", "admin", crate::contract::TOKEN_ISSUER])
    {
        return Err(reject(
            "dispute",
            RejectKind::PermissionDenied,
            "disputes are recorded by the meter's grid company (its operators, or its token key for a resident)",
        ));
    }
    if view.record(&keys::dispute(&d.dispute_id)).is_some() {
        return Err(reject(
            "dispute",
            RejectKind::AlreadyExists,
            format!("dispute {:?} exists", d.dispute_id),
        ));
    }
    let rec = DisputeRec {
        dispute_id: d.dispute_id.clone(),
        asset_no: d.asset_no.clone(),
        account: d.account.clone(),
        reason: d.reason.clone(),
        opened_by: i.org_id.clone(),
        resolved_by: None,
    };
    Ok(vec![
        put(keys::dispute(&d.dispute_id), &rec),
        put(keys::dispute_of(&d.asset_no, &d.dispute_id), &d.dispute_id),
    ])
}

/// Rule `4.3/acceptance`: the owner of the calibrated equipment (its admin or verifiers)
/// accepts a calibration another org issued for it, which from then on counts for the
/// chain.
///
/// # Errors
/// A [`Rejection`] naming the rule.
pub fn accept_calibration(
    view: &dyn StateView,
    i: &SignerInfo,
    a: &pb::AcceptCalibration,
) -> Result<Vec<Effect>, Rejection> {
    check_ident("cert_no", &a.cert_no)?;
    let unknown = || {
        reject(
            "4.3/acceptance",
            RejectKind::FailedPrecondition,
            format!("no calibration certificate {:?}", a.cert_no),
        )
    };
    let (_, key) = get::<String>(view, &keys::calibration_no(&a.cert_no)).ok_or_else(unknown)?;
    let (_, cal) = get::<CalibrationRec>(view, key.as_bytes()).ok_or_else(unknown)?;
    let (_, eq) =
        get::<EquipmentRec>(view, &keys::equipment(&cal.equipment_no)).ok_or_else(unknown)?;
    if i.org_id != eq.owner_org || !has_role(i, &["admin", "verifier"]) {
        return Err(reject(
            "4.3/acceptance",
            RejectKind::PermissionDenied,
            format!(
                "calibrations of {:?} are accepted by its owner {:?}",
                eq.equipment_no, eq.owner_org
            ),
        ));
    }
    if cal.institution_org == eq.owner_org
        || view
            .record(&keys::calibration_accepted(&a.cert_no))
            .is_some()
    {
        return Err(reject(
            "4.3/acceptance",
            RejectKind::AlreadyExists,
            format!(
                "calibration {:?} already counts for its equipment",
                a.cert_no
            ),
        ));
    }
    Ok(vec![put(
        keys::calibration_accepted(&a.cert_no),
        &a.cert_no,
    )])
}
