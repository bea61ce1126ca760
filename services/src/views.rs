//! Record views of the metrology domain (DESIGN.md §5): an instrument with its
//! certificates, its traceability chain, an institution's credit view, the settlement
//! check and the verification plans. Each view is tables of ledger records, every row
//! naming the leaf that wrote it (and, on request, carrying its receipt), so a client
//! can check each row against the log. gRPC returns them as `DataView`; the gateway
//! renders the same view as TableJson ([`table_json`]).
//!
//! The chain shown is computed by the same function the contracts use
//! (`gridledger_core::metrology::chain`), so a view never disagrees with the rules.

use std::cell::RefCell;

use gridledger_core::contract::RecordSource;
use gridledger_core::metrology::{
    self as m, AccreditationRec, AuthorisationRec, CertificateRec, EquipmentRec, InstrumentRec,
    PersonnelRec, PlanRec, keys,
};
use gridledger_proto::v1 as pb;
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::backend::DataBackend;
use crate::data::{Data, check_day};
use crate::error::{Result, ServiceError};

/// Days before a due date from which an item counts as "due".
pub const DUE_SOON_DAYS: i64 = 30;
/// Most certificates listed in an institution's view (the newest).
pub const MAX_ISSUED_LISTED: usize = 200;
/// Most plans one request judges, oldest due date first (so overdue plans come first);
/// the summary says when there are more.
pub const MAX_PLANS: usize = 5000;
/// Most certificates of one institution counted for its view; beyond it the count is a
/// lower bound (`certificates_issued_at_least`).
pub const MAX_ISSUED_COUNTED: usize = 100_000;

type Cols = &'static [(&'static str, &'static str, &'static str)];

const INSTRUMENT: Cols = &[
    ("asset_no", "string", ""),
    ("kind", "string", "InstrumentKind"),
    ("accuracy_class", "string", "IEC/EN class"),
    ("manufacturer_org", "string", "org id"),
    ("model", "string", ""),
    ("owner_org", "string", "org id"),
];
const CERTIFICATE: Cols = &[
    ("cert_no", "string", ""),
    ("kind", "string", "CertificateKind"),
    ("institution_org", "string", "org id"),
    ("test_date", "date", "YYYY-MM-DD"),
    ("valid_until", "date", "YYYY-MM-DD"),
    ("passed", "boolean", ""),
    ("equipment", "list", "equipment numbers"),
    ("dispute_id", "string", ""),
];
const LINK: Cols = &[
    (
        "for_equipment",
        "string",
        "equipment used by the certificate",
    ),
    ("depth", "integer", "0 = the equipment itself"),
    ("equipment_no", "string", ""),
    ("equipment_kind", "string", "EquipmentKind"),
    ("accuracy", "decimal-percent", "%"),
    ("owner_org", "string", "org id"),
    ("equipment_leaf", "integer", "leaf index"),
    ("calibration_cert", "string", ""),
    ("calibrated_with", "string", "equipment number"),
    ("calibration_date", "date", "YYYY-MM-DD"),
    ("valid_until", "date", "YYYY-MM-DD"),
    ("uncertainty", "decimal-percent", "%"),
];
const AUTHORISATION: Cols = &[
    ("number", "string", ""),
    ("issuer_org", "string", "org id"),
    ("scope", "list", "kind: classes"),
    ("valid_from", "date", "YYYY-MM-DD"),
    ("valid_until", "date", "YYYY-MM-DD"),
    ("status", "string", "valid, expired or not yet valid, today"),
];
const ACCREDITATION: Cols = &[
    ("number", "string", ""),
    ("accreditation_body", "string", ""),
    ("standard", "string", ""),
    ("valid_until", "date", "YYYY-MM-DD"),
    ("status", "string", "valid or expired, today"),
];
const PERSONNEL: Cols = &[
    ("number", "string", ""),
    ("holder", "string", "verifier id"),
    ("scope", "list", "InstrumentKind"),
    ("valid_from", "date", "YYYY-MM-DD"),
    ("valid_until", "date", "YYYY-MM-DD"),
    ("status", "string", "valid, expired or not yet valid, today"),
];
const EQUIPMENT: Cols = &[
    ("equipment_no", "string", ""),
    ("kind", "string", "EquipmentKind"),
    ("accuracy", "decimal-percent", "%"),
    ("range", "string", ""),
    ("calibration_cert", "string", "in force today"),
    ("calibrated_until", "date", "YYYY-MM-DD"),
    (
        "status",
        "string",
        "valid, due (within 30 days) or expired, today",
    ),
];
const PLAN: Cols = &[
    ("plan_id", "string", ""),
    ("subject_kind", "string", "PlanSubject"),
    ("subject_id", "string", ""),
    ("task", "string", ""),
    ("due_date", "date", "YYYY-MM-DD"),
    ("owner_org", "string", "org id"),
    ("status", "string", "done, overdue, due or open, today"),
    ("done_by", "string", "the record that fulfils it"),
];
const READING: Cols = &[
    ("day", "date", "YYYY-MM-DD"),
    ("import_wh", "integer", "Wh"),
    ("export_wh", "integer", "Wh"),
    ("register_import_wh", "integer", "Wh"),
    ("register_export_wh", "integer", "Wh"),
    ("collection", "string", "class II collection"),
    ("salt", "string", "hex, 32 bytes"),
    (
        "payload",
        "string",
        "hex, encoded ReadingValues (the commitment covers salt and payload)",
    ),
    (
        "purged_by",
        "integer",
        "leaf index of the purge; values absent",
    ),
];

const BINDING: Cols = &[
    ("from", "date", "YYYY-MM-DD, first day of the binding"),
    ("account", "string", "customer account (empty: no customer)"),
    ("installation_point", "string", "metering point or address"),
    ("current", "boolean", "the meter's current binding"),
    (
        "replaces",
        "integer",
        "leaf index of the binding this one replaced",
    ),
    ("collection", "string", "class II collection"),
    ("salt", "string", "hex, 32 bytes"),
    (
        "payload",
        "string",
        "hex, encoded CustomerBinding (the commitment covers salt and payload)",
    ),
    (
        "purged_by",
        "integer",
        "leaf index of the purge; values absent",
    ),
];
/// Most bindings one meter's view lists.
pub const MAX_BINDINGS: usize = 1000;

const READING_INTERVALS: Cols = &[
    ("day", "date", "YYYY-MM-DD"),
    ("import_wh", "integer", "Wh"),
    ("export_wh", "integer", "Wh"),
    ("register_import_wh", "integer", "Wh"),
    ("register_export_wh", "integer", "Wh"),
    ("collection", "string", "class II collection"),
    ("salt", "string", "hex, 32 bytes"),
    (
        "payload",
        "string",
        "hex, encoded ReadingValues (the commitment covers salt and payload)",
    ),
    (
        "purged_by",
        "integer",
        "leaf index of the purge; values absent",
    ),
    ("import_intervals_wh", "list", "Wh per quarter hour"),
    ("export_intervals_wh", "list", "Wh per quarter hour"),
];

/// The records the metrology read functions need, over a data backend. Storage
/// errors are kept and reported after the computation (the core functions are
/// infallible readers).
struct Reader<'a, B> {
    b: &'a B,
    err: RefCell<Option<ServiceError>>,
}

impl<'a, B: DataBackend> Reader<'a, B> {
    fn new(b: &'a B) -> Self {
        Self {
            b,
            err: RefCell::new(None),
        }
    }
    fn done<T>(self, v: T) -> Result<T> {
        match self.err.into_inner() {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }
    fn keep<T: Default>(&self, r: Result<T>) -> T {
        r.unwrap_or_else(|e| {
            self.err.borrow_mut().get_or_insert(e);
            T::default()
        })
    }
}

impl<B: DataBackend> RecordSource for Reader<'_, B> {
    fn record(&self, key: &[u8]) -> Option<(u64, Vec<u8>)> {
        self.keep(self.b.record(key))
    }
    fn records(&self, prefix: &[u8], limit: usize) -> Vec<gridledger_core::contract::RecordEntry> {
        self.keep(self.b.records(prefix, limit))
    }
}

fn check_id(what: &str, v: &str) -> Result<()> {
    if gridledger_core::contract::valid_ident(v) {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgument(format!(
            "{what} must be 1-{} printable characters without whitespace or ':'",
            gridledger_core::contract::MAX_ID_LEN
        )))
    }
}

fn fact(name: &str, v: Value) -> pb::Fact {
    pb::Fact {
        name: name.into(),
        json: v.to_string(),
    }
}

fn table(
    name: &str,
    description: impl Into<String>,
    data_class: &str,
    cols: Cols,
    rows: Vec<pb::RecordRow>,
) -> pb::Table {
    pb::Table {
        name: name.into(),
        description: description.into(),
        data_class: data_class.into(),
        columns: cols
            .iter()
            .map(|(f, t, u)| pb::Column {
                field: (*f).into(),
                r#type: (*t).into(),
                unit: (*u).into(),
            })
            .collect(),
        rows,
    }
}

fn status_between(today: &str, from: &str, until: &str) -> &'static str {
    if !from.is_empty() && today < from {
        "not yet valid"
    } else if today > until {
        "expired"
    } else {
        "valid"
    }
}

fn days_between(a: &str, b: &str) -> Option<i64> {
    Some(m::day_number(b)? - m::day_number(a)?)
}

impl<B: DataBackend> Data<B> {
    fn row(&self, leaf: u64, kind: &str, value: Value, receipts: bool) -> Result<pb::RecordRow> {
        Ok(pb::RecordRow {
            leaf_index: leaf,
            record_type: kind.into(),
            json: value.to_string(),
            receipt: if receipts {
                self.backend().receipt(leaf)?
            } else {
                String::new()
            },
        })
    }

    fn rows<T: Serialize>(
        &self,
        kind: &str,
        items: impl IntoIterator<Item = (u64, T)>,
        receipts: bool,
        extra: impl Fn(&T) -> Value,
    ) -> Result<Vec<pb::RecordRow>> {
        items
            .into_iter()
            .map(|(leaf, t)| {
                let mut v = serde_json::to_value(&t).expect("plain record");
                if let (Value::Object(o), Value::Object(x)) = (&mut v, extra(&t)) {
                    o.extend(x);
                }
                self.row(leaf, kind, v, receipts)
            })
            .collect()
    }

    fn instrument_rec(&self, asset: &str) -> Result<(u64, InstrumentRec)> {
        check_id("asset_no", asset)?;
        let (leaf, v) = self
            .backend()
            .record(&keys::instrument(asset))?
            .ok_or_else(|| ServiceError::NotFound(format!("no instrument {asset:?}")))?;
        let rec = serde_json::from_slice(&v)
            .map_err(|e| ServiceError::Internal(format!("instrument record: {e}")))?;
        Ok((leaf, rec))
    }

    fn certificates(&self, asset: &str) -> Result<Vec<(u64, CertificateRec)>> {
        let r = Reader::new(self.backend().as_ref());
        let list = m::list::<CertificateRec>(&r, &keys::certificates_of(asset));
        r.done(list)
    }

    /// An instrument, its certificates (oldest first) and the current verification
    /// certificate: the verification with the latest test date.
    ///
    /// # Errors
    /// INVALID_ARGUMENT, NOT_FOUND, storage failures.
    pub fn instrument_view(&self, asset: &str, receipts: bool) -> Result<pb::DataView> {
        let (leaf, inst) = self.instrument_rec(asset)?;
        let certs = self.certificates(asset)?;
        let current = certs
            .iter()
            .filter(|(_, c)| c.is_verification())
            .max_by(|a, b| a.1.test_date.cmp(&b.1.test_date));
        let summary = vec![
            fact("asset_no", json!(asset)),
            fact(
                "current_certificate",
                current.map_or(Value::Null, |(l, c)| {
                    json!({"cert_no": c.cert_no, "leaf_index": l, "passed": c.passed,
                           "valid_until": c.valid_until})
                }),
            ),
        ];
        Ok(pb::DataView {
            title: format!("instrument {asset}"),
            summary,
            tables: vec![
                table(
                    "instrument",
                    "the instrument's registration",
                    "I",
                    INSTRUMENT,
                    self.rows("instrument", [(leaf, inst)], receipts, |_| json!({}))?,
                ),
                table(
                    "certificates",
                    "life-cycle certificates, by test date",
                    "I",
                    CERTIFICATE,
                    self.rows("certificate", certs, receipts, |_| json!({}))?,
                ),
            ],
            ..Default::default()
        })
    }

    /// The traceability chain behind the instrument's current verification
    /// certificate: for each piece of equipment it names, every link up to a national
    /// standard, evaluated on `date` (default: the certificate's test date).
    ///
    /// # Errors
    /// INVALID_ARGUMENT, NOT_FOUND (no instrument, or no verification certificate),
    /// storage failures.
    pub fn traceability(&self, asset: &str, date: &str, receipts: bool) -> Result<pb::DataView> {
        self.instrument_rec(asset)?;
        let certs = self.certificates(asset)?;
        let (cert_leaf, cert) = certs
            .into_iter()
            .filter(|(_, c)| c.is_verification())
            .max_by(|a, b| a.1.test_date.cmp(&b.1.test_date))
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "instrument {asset:?} has no verification certificate"
                ))
            })?;
        let day = if date.is_empty() {
            cert.test_date.clone()
        } else {
            check_day("date", date)?;
            date.to_string()
        };
        let r = Reader::new(self.backend().as_ref());
        let mut rows = Vec::new();
        let mut broken = Vec::new();
        for e in &cert.equipment {
            match m::chain(&r, e, &day) {
                Ok(links) => {
                    for (depth, l) in links.into_iter().enumerate() {
                        let (leaf, cal) = match l.calibration {
                            Some((leaf, c)) => (leaf, Some(c)),
                            None => (l.equipment_leaf, None),
                        };
                        let v = json!({
                            "for_equipment": e, "depth": depth,
                            "equipment_no": l.equipment.equipment_no,
                            "equipment_kind": l.equipment.kind,
                            "accuracy": l.equipment.accuracy,
                            "owner_org": l.equipment.owner_org,
                            "equipment_leaf": l.equipment_leaf,
                            "calibration_cert": cal.as_ref().map(|c| c.cert_no.clone()),
                            "calibrated_with": cal.as_ref().map(|c| c.calibrating_equipment.clone()),
                            "calibration_date": cal.as_ref().map(|c| c.date.clone()),
                            "valid_until": cal.as_ref().map_or(l.equipment.valid_until.clone(), |c| c.valid_until.clone()),
                            "uncertainty": cal.as_ref().map(|c| c.uncertainty.clone()),
                        });
                        rows.push(self.row(
                            leaf,
                            if cal.is_some() {
                                "calibration"
                            } else {
                                "national_standard"
                            },
                            v,
                            receipts,
                        )?);
                    }
                }
                Err(why) => broken.push(json!({"equipment": e, "problem": why})),
            }
        }
        let rows = r.done(rows)?;
        Ok(pb::DataView {
            title: format!("traceability of {asset}"),
            summary: vec![
                fact("asset_no", json!(asset)),
                fact(
                    "certificate",
                    json!({"cert_no": cert.cert_no, "leaf_index": cert_leaf, "test_date": cert.test_date}),
                ),
                fact("evaluated_on", json!(day)),
                fact("certificate_valid_on_date", json!(cert.covers(&day))),
                fact("complete", json!(broken.is_empty())),
                fact("problems", Value::Array(broken)),
            ],
            tables: vec![table(
                "chain",
                "each link up to a national standard (leaf: the calibration, or the national standard's registration)",
                "I",
                LINK,
                rows,
            )],
            ..Default::default()
        })
    }

    /// An institution's public credit view on `today`: authorisations, accreditations,
    /// personnel certificates, equipment and its calibration status, the newest
    /// certificates it issued (with the total), and the plans of its equipment.
    ///
    /// # Errors
    /// INVALID_ARGUMENT, NOT_FOUND (no records at all), storage failures.
    pub fn institution(&self, org: &str, today: &str, receipts: bool) -> Result<pb::DataView> {
        check_id("institution id", org)?;
        let r = Reader::new(self.backend().as_ref());
        let auths = m::list::<AuthorisationRec>(&r, &keys::authorisations(org));
        let accrs = m::list::<AccreditationRec>(&r, &keys::accreditations(org));
        let pers = m::list::<PersonnelRec>(&r, &keys::personnel_of(org));
        let owned = m::list::<String>(&r, &keys::equipment_of(org));
        let mut equipment = Vec::new();
        for (_, no) in &owned {
            if let Some((leaf, e)) = m::get::<EquipmentRec>(&r, &keys::equipment(no)) {
                let cal = m::calibration_on(&r, no, &e.owner_org, today);
                equipment.push((leaf, e, cal));
            }
        }
        let issued = r.b.records(&keys::issued_by(org), MAX_ISSUED_COUNTED)?;
        let r_issued_total = issued.len();
        let newest: Vec<(u64, CertificateRec)> = issued
            .into_iter()
            .rev()
            .take(MAX_ISSUED_LISTED)
            .filter_map(|(_, l, v)| serde_json::from_slice(&v).ok().map(|c| (l, c)))
            .collect();
        let (auths, accrs, pers) = r.done((auths, accrs, pers))?;
        if auths.is_empty() && accrs.is_empty() && pers.is_empty() && equipment.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "no institution records for {org:?}"
            )));
        }
        let equipment_rows = equipment
            .into_iter()
            .map(|(leaf, e, cal)| {
                let until = if e.is_national() {
                    e.valid_until.clone()
                } else {
                    cal.as_ref()
                        .map(|(_, c)| c.valid_until.clone())
                        .unwrap_or_default()
                };
                let status = match days_between(today, &until) {
                    None if e.is_national() => "valid",
                    None => "uncalibrated",
                    Some(d) if d < 0 => "expired",
                    Some(d) if d <= DUE_SOON_DAYS => "due",
                    Some(_) => "valid",
                };
                let v = {
                    let mut v = serde_json::to_value(&e).expect("plain record");
                    v["calibration_cert"] = json!(cal.as_ref().map(|(_, c)| c.cert_no.clone()));
                    v["calibrated_until"] = json!(until);
                    v["status"] = json!(status);
                    v
                };
                self.row(leaf, "equipment", v, receipts)
            })
            .collect::<Result<Vec<_>>>()?;
        let due: Vec<Value> = equipment_rows
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.json).ok())
            .filter(|v| v["status"] != "valid")
            .map(|v| json!({"equipment_no": v["equipment_no"], "status": v["status"], "calibrated_until": v["calibrated_until"]}))
            .collect();
        let scope = |a: &AuthorisationRec| {
            json!({"scope": a.scope.iter().map(|s| format!("{}: {}", s.kind, s.classes.join(","))).collect::<Vec<_>>(),
                   "status": status_between(today, &a.valid_from, &a.valid_until)})
        };
        Ok(pb::DataView {
            title: format!("institution {org}"),
            summary: vec![
                fact("institution", json!(org)),
                fact("as_of", json!(today)),
                fact(
                    "authorised_today",
                    json!(auths.iter().any(|(_, a)| status_between(today, &a.valid_from, &a.valid_until) == "valid")),
                ),
                fact("equipment_due_or_expired", Value::Array(due)),
                fact("certificates_issued", json!(r_issued_total)),
                fact(
                    "certificates_issued_at_least",
                    json!(r_issued_total == MAX_ISSUED_COUNTED),
                ),
            ],
            tables: vec![
                table("authorisations", "government authorisations", "I", AUTHORISATION,
                    self.rows("authorisation", auths, receipts, scope)?),
                table("accreditations", "laboratory accreditations", "I", ACCREDITATION,
                    self.rows("accreditation", accrs, receipts, |a: &AccreditationRec| {
                        json!({"status": status_between(today, "", &a.valid_until)})
                    })?),
                table("personnel", "verifiers' personnel certificates", "I", PERSONNEL,
                    self.rows("personnel_certificate", pers, receipts, |p: &PersonnelRec| {
                        json!({"status": status_between(today, &p.valid_from, &p.valid_until)})
                    })?),
                table("equipment", "standard equipment and its calibration today", "I", EQUIPMENT, equipment_rows),
                table(
                    "certificates_issued",
                    format!("the newest {} certificates issued", MAX_ISSUED_LISTED),
                    "I",
                    CERTIFICATE,
                    self.rows("certificate", newest, receipts, |_| json!({}))?,
                ),
            ],
            ..Default::default()
        })
    }

    /// The settlement check (DOMAIN.md §5): the meter's readings over `[from, to]` and
    /// the certificates that cover the period, with the days no passed verification
    /// certificate covers. Only readers of the meter's readings may ask.
    ///
    /// # Errors
    /// INVALID_ARGUMENT, PERMISSION_DENIED, storage failures.
    pub fn settlement(
        &self,
        p: &Principal,
        asset: &str,
        from: &str,
        to: &str,
        receipts: bool,
    ) -> Result<pb::DataView> {
        let readings = self.readings(p, asset, from, to)?;
        let certs = self.certificates(asset)?;
        let records: Vec<CertificateRec> = certs.iter().map(|(_, c)| c.clone()).collect();
        let gaps = m::uncovered(&records, from, to);
        let relevant: Vec<(u64, CertificateRec)> = certs
            .into_iter()
            .filter(|(_, c)| {
                c.is_verification() && c.test_date.as_str() <= to && c.valid_until.as_str() >= from
            })
            .collect();
        let reading_rows = readings
            .readings
            .iter()
            .map(|d| self.row(d.leaf_index, "reading", reading_json(d, false), receipts))
            .collect::<Result<Vec<_>>>()?;
        Ok(pb::DataView {
            title: format!("settlement check of {asset} from {from} to {to}"),
            summary: vec![
                fact("asset_no", json!(asset)),
                fact("from", json!(from)),
                fact("to", json!(to)),
                fact("certified_throughout", json!(gaps.is_empty())),
                fact(
                    "uncovered",
                    Value::Array(
                        gaps.iter()
                            .map(|(a, b)| json!({"from": a, "to": b}))
                            .collect(),
                    ),
                ),
                fact("readings", json!(reading_rows.len())),
            ],
            tables: vec![
                table(
                    "certificates",
                    "verification certificates overlapping the period",
                    "I",
                    CERTIFICATE,
                    self.rows("certificate", relevant, receipts, |_| json!({}))?,
                ),
                table(
                    "readings",
                    "daily totals (intervals: GET readings)",
                    "II",
                    READING,
                    reading_rows,
                ),
            ],
            ..Default::default()
        })
    }

    /// Verification plans with their status on `today` (at most [`MAX_PLANS`], by due
    /// date, with `truncated` in the summary when there are more). A plan is done when its subject
    /// has a qualifying record dated within the year before its due date or later: a
    /// passed verification certificate (instrument), a calibration (equipment) or an
    /// authorisation valid past the due date (institution). Otherwise it is overdue
    /// after its due date, due within [`DUE_SOON_DAYS`] of it, and open before that.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for an unknown status filter, storage failures.
    pub fn plans(
        &self,
        status: &str,
        subject: &str,
        today: &str,
        receipts: bool,
    ) -> Result<pb::DataView> {
        if !["", "done", "overdue", "due", "open"].contains(&status) {
            return Err(ServiceError::InvalidArgument(format!(
                "status must be done, overdue, due or open, got {status:?}"
            )));
        }
        if !subject.is_empty() {
            check_id("subject", subject)?;
        }
        let r = Reader::new(self.backend().as_ref());
        // One more than judged, to tell whether there are more.
        let mut plans: Vec<(u64, PlanRec)> = r
            .records(keys::PLANS_BY_DUE, MAX_PLANS + 1)
            .into_iter()
            .filter_map(|(_, l, v)| serde_json::from_slice(&v).ok().map(|p| (l, p)))
            .collect();
        let truncated = plans.len() > MAX_PLANS;
        plans.truncate(MAX_PLANS);
        let mut out = Vec::new();
        let mut counts = std::collections::BTreeMap::<&str, u64>::new();
        for (leaf, p) in plans {
            if !subject.is_empty() && p.subject_id != subject {
                continue;
            }
            let since = m::day_number(&p.due_date)
                .map(|d| m::day_string(d - 365))
                .unwrap_or_default();
            let done_by = match p.subject_kind.as_str() {
                "PLAN_SUBJECT_INSTRUMENT" => {
                    m::list::<CertificateRec>(&r, &keys::certificates_of(&p.subject_id))
                        .into_iter()
                        .rev()
                        .find(|(_, c)| c.is_verification() && c.passed && c.test_date >= since)
                        .map(|(_, c)| c.cert_no)
                }
                "PLAN_SUBJECT_EQUIPMENT" => {
                    m::list::<m::CalibrationRec>(&r, &keys::calibrations(&p.subject_id))
                        .into_iter()
                        .rev()
                        .find(|(_, c)| c.date >= since)
                        .map(|(_, c)| c.cert_no)
                }
                _ => m::list::<AuthorisationRec>(&r, &keys::authorisations(&p.subject_id))
                    .into_iter()
                    .find(|(_, a)| a.valid_until > p.due_date)
                    .map(|(_, a)| a.number),
            };
            let st = match (&done_by, days_between(today, &p.due_date)) {
                (Some(_), _) => "done",
                (None, Some(d)) if d < 0 => "overdue",
                (None, Some(d)) if d <= DUE_SOON_DAYS => "due",
                _ => "open",
            };
            *counts.entry(st).or_default() += 1;
            if status.is_empty() || status == st {
                out.push((leaf, p, st, done_by));
            }
        }
        let rows = out
            .into_iter()
            .map(|(leaf, p, st, done_by)| {
                let mut v = serde_json::to_value(&p).expect("plain record");
                v["status"] = json!(st);
                v["done_by"] = json!(done_by);
                self.row(leaf, "plan", v, receipts)
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = r.done(rows)?;
        Ok(pb::DataView {
            title: "verification plans".into(),
            summary: vec![
                fact("as_of", json!(today)),
                fact("counts", json!(counts)),
                fact("truncated", json!(truncated)),
            ],
            tables: vec![table("plans", "plans by due date", "I", PLAN, rows)],
            ..Default::default()
        })
    }
}

impl<B: DataBackend> Data<B> {
    /// A meter's readings over `[from, to]` as a view (daily totals and the 96 interval
    /// values each way), for readers of the meter's readings.
    ///
    /// # Errors
    /// As [`Data::readings`].
    pub fn readings_view(
        &self,
        p: &Principal,
        asset: &str,
        from: &str,
        to: &str,
        receipts: bool,
    ) -> Result<pb::DataView> {
        let r = self.readings(p, asset, from, to)?;
        let rows = r
            .readings
            .iter()
            .map(|d| self.row(d.leaf_index, "reading", reading_json(d, true), receipts))
            .collect::<Result<Vec<_>>>()?;
        Ok(pb::DataView {
            title: format!("readings of {asset} from {from} to {to}"),
            summary: vec![
                fact("asset_no", json!(asset)),
                fact("days", json!(rows.len())),
            ],
            tables: vec![table(
                "readings",
                "daily readings",
                "II",
                READING_INTERVALS,
                rows,
            )],
            ..Default::default()
        })
    }

    /// The caller's bound meters (residents) as a view.
    ///
    /// # Errors
    /// Storage failures.
    pub fn my_meters_view(&self, p: &Principal, receipts: bool) -> Result<pb::DataView> {
        let mut rows = Vec::new();
        for asset in p.bound_meters().take(crate::data::MAX_BOUND_METERS) {
            // A bound meter not (or no longer) registered is left out; any other failure
            // is the caller's to see.
            match self.instrument_rec(asset) {
                Ok((leaf, rec)) => {
                    rows.extend(self.rows("instrument", [(leaf, rec)], receipts, |_| json!({}))?)
                }
                Err(ServiceError::NotFound(_) | ServiceError::InvalidArgument(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(pb::DataView {
            title: "my meters".into(),
            summary: vec![fact("meters", json!(rows.len()))],
            tables: vec![table(
                "meters",
                "the meters bound to this resident",
                "I",
                INSTRUMENT,
                rows,
            )],
            ..Default::default()
        })
    }
}

impl<B: DataBackend> Data<B> {
    /// A meter's customer bindings (class II, DOMAIN.md §2.3), oldest first: all of them
    /// for a dynamic token with `binding:<asset>`, only those naming the account for one
    /// with `binding:<asset>:<account>` (what a resident is granted). Each row carries the
    /// salt and payload its leaf's commitment covers.
    ///
    /// A meter the caller may not read and one that does not exist get the same
    /// PERMISSION_DENIED, as for readings.
    ///
    /// # Errors
    /// INVALID_ARGUMENT, PERMISSION_DENIED; FAILED_PRECONDITION when this node does not
    /// hold the collection's payloads.
    pub fn bindings_view(
        &self,
        p: &Principal,
        asset: &str,
        receipts: bool,
    ) -> Result<pb::DataView> {
        check_id("asset_no", asset)?;
        let denied = || {
            ServiceError::PermissionDenied(format!(
                "{} may not read the customer bindings of meter {asset:?}",
                p.describe()
            ))
        };
        let owner = match self.backend().meter(asset)? {
            Some(m) => m.owner_org,
            None => return Err(denied()),
        };
        let Some(only) = crate::auth::binding_grant(p, asset, &owner) else {
            return Err(denied());
        };
        let current = self
            .backend()
            .record(&keys::binding(asset))?
            .map(|(l, _)| l);
        let mut history: Vec<(u64, gridledger_core::private::BindingRec)> = self
            .backend()
            .records(&keys::bindings_of(asset), MAX_BINDINGS)?
            .into_iter()
            .map(|(_, leaf, v)| {
                serde_json::from_slice(&v)
                    .map(|r| (leaf, r))
                    .map_err(|e| ServiceError::Internal(format!("binding record: {e}")))
            })
            .collect::<Result<_>>()?;
        history.sort_by_key(|(leaf, _)| *leaf);
        let mut members_ok: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for (leaf, b) in history {
            // The on-ledger half of the policy, as for readings.
            if !members_ok.contains(&b.collection) {
                let members = self
                    .backend()
                    .collection_members(&b.collection)?
                    .unwrap_or_default();
                if !members.contains(&p.org) {
                    return Err(ServiceError::PermissionDenied(format!(
                        "org {:?} is not a member of collection {:?}, which holds these bindings",
                        p.org, b.collection
                    )));
                }
                members_ok.push(b.collection.clone());
            }
            let rec = self.backend().private_record(leaf)?;
            let mut v = json!({"current": Some(leaf) == current, "replaces": b.replaces,
                               "collection": rec.collection});
            match rec.purged_by {
                // A purged binding names nobody, so an account-scoped grant cannot claim it.
                Some(_) if only.is_some() => continue,
                Some(by) => v["purged_by"] = json!(by),
                None => {
                    let c =
                        gridledger_core::private::decode_binding(&rec.payload).map_err(|e| {
                            ServiceError::Internal(format!("stored binding of leaf {leaf}: {e}"))
                        })?;
                    if only.is_some_and(|a| a != c.account) {
                        continue;
                    }
                    v["account"] = json!(c.account);
                    v["installation_point"] = json!(c.installation_point);
                    v["from"] = json!(c.from);
                    v["salt"] = json!(hex::encode(&rec.salt));
                    v["payload"] = json!(hex::encode(&rec.payload));
                }
            }
            rows.push(self.row(leaf, "binding", v, receipts)?);
        }
        Ok(pb::DataView {
            title: format!("customer bindings of {asset}"),
            summary: vec![
                fact("asset_no", json!(asset)),
                fact("bindings", json!(rows.len())),
                fact("current", json!(current)),
            ],
            tables: vec![table(
                "bindings",
                "customer bindings and installation points, oldest first",
                "II",
                BINDING,
                rows,
            )],
            ..Default::default()
        })
    }
}

/// A reading row (class II): the values with the salt and the encoded payload the
/// leaf's commitment covers, so the reader checks them itself; or, once purged, only
/// the day and the purging leaf.
fn reading_json(d: &pb::DailyReading, intervals: bool) -> Value {
    if let Some(by) = d.purged_by {
        return json!({"day": d.day, "purged_by": by, "collection": d.collection});
    }
    let mut v = json!({"day": d.day, "import_wh": d.import_wh, "export_wh": d.export_wh,
                       "register_import_wh": d.register_import_wh,
                       "register_export_wh": d.register_export_wh,
                       "collection": d.collection,
                       "salt": hex::encode(&d.salt), "payload": hex::encode(&d.payload)});
    if intervals {
        v["import_intervals_wh"] = json!(d.import_intervals_wh);
        v["export_intervals_wh"] = json!(d.export_intervals_wh);
    }
    v
}

/// Renders a view as the gateway's JSON: `title`, `summary` (an object), and `tables`,
/// each a TableJson (DESIGN.md §5): `type`, `property` (description, timestamp, origin,
/// tree size, data class), `structure` (columns), `cell` (rows, in column order, ending
/// with `leaf_index` and, when asked for, `receipt`).
pub fn view_json(v: &pb::DataView, timestamp: &str, receipts: bool) -> Value {
    let summary: serde_json::Map<String, Value> = v
        .summary
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                serde_json::from_str(&f.json).unwrap_or(Value::Null),
            )
        })
        .collect();
    json!({
        "title": v.title,
        "summary": summary,
        "tables": v.tables.iter().map(|t| table_json(t, &v.origin, v.tree_size, timestamp, receipts)).collect::<Vec<_>>(),
    })
}

/// One table as TableJson.
pub fn table_json(
    t: &pb::Table,
    origin: &str,
    tree_size: u64,
    timestamp: &str,
    receipts: bool,
) -> Value {
    let mut structure: Vec<Value> = t
        .columns
        .iter()
        .map(|c| json!({"field": c.field, "type": c.r#type, "unit": c.unit}))
        .collect();
    structure
        .push(json!({"field": "leaf_index", "type": "integer", "unit": "leaf index in the log"}));
    if receipts {
        structure.push(json!({"field": "receipt", "type": "string", "unit": "C2SP tlog-proof"}));
    }
    let cell: Vec<Value> = t
        .rows
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(&r.json).unwrap_or(Value::Null);
            let mut row: Vec<Value> = t
                .columns
                .iter()
                .map(|c| v.get(&c.field).cloned().unwrap_or(Value::Null))
                .collect();
            row.push(json!(r.leaf_index));
            if receipts {
                row.push(json!(r.receipt));
            }
            Value::Array(row)
        })
        .collect();
    json!({
        "type": "TableJson",
        "name": t.name,
        "property": {
            "description": t.description,
            "timestamp": timestamp,
            "origin": origin,
            "tree_size": tree_size,
            "data_class": t.data_class,
            "rows": t.rows.len(),
        },
        "structure": structure,
        "cell": cell,
    })
}
