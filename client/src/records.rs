//! Typed, verified reads of metrology records: every row of a DataService view comes
//! with its receipt, which is checked against the trust policy (quorum of node keys)
//! before the row is handed out; the leaf the receipt proves is decoded and its key
//! fields compared with the row, so a server cannot show a row the log does not hold.

use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_core::receipt::Receipt;
use gridledger_core::trust::Policy;
use gridledger_proto::v1 as gpb;
use prost::Message as _;
use serde_json::Value;

use crate::error::ClientError;

/// One verified row: its fields, the leaf index and the transaction payload the receipt
/// proved.
#[derive(Debug, Clone)]
pub struct VerifiedRow {
    /// Table name.
    pub table: String,
    /// The row's fields as the server sent them (checked against the leaf).
    pub fields: serde_json::Map<String, Value>,
    /// Leaf index.
    pub leaf_index: u64,
    /// The proven payload.
    pub payload: Payload,
}

/// A verified view: summary facts and verified rows.
#[derive(Debug, Clone)]
pub struct VerifiedView {
    /// Title.
    pub title: String,
    /// Summary facts (JSON values).
    pub summary: serde_json::Map<String, Value>,
    /// Rows of every table, in order.
    pub rows: Vec<VerifiedRow>,
}

/// What the caller asked about, which every row must be about.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The instrument asked about (instrument, certificate and reading rows must name it).
    pub asset: Option<String>,
    /// The period asked about (settlement): the coverage summary is recomputed from the
    /// verified certificates and must agree with the server's.
    pub period: Option<(String, String)>,
}

// The transaction types a table's rows may prove.
fn expected_kinds(table: &str) -> &'static [&'static str] {
    match table {
        "instrument" | "meters" => &["register_instrument"],
        "certificates" | "certificates_issued" => &["issue_certificate"],
        "readings" => &["record_reading"],
        "bindings" => &["bind_customer"],
        "demand_plans" => &["publish_demand_plan", "acknowledge_demand"],
        "test_batches" => &["publish_test_batch"],
        "models" => &["register_model"],
        "chain" => &["issue_calibration", "register_equipment"],
        "equipment" => &["register_equipment"],
        "authorisations" => &["grant_authorisation"],
        "accreditations" => &["record_accreditation"],
        "personnel" => &["register_personnel_certificate"],
        "plans" => &["schedule_plan"],
        _ => &[],
    }
}

/// Verifies every row of `view` (which must have been asked for with receipts): its
/// receipt under `policy`, that the proven transaction is of the table's type and about
/// what `query` asked, and that the row shows the proven transaction's fields. For a
/// settlement view, the coverage summary is recomputed from the verified certificates.
///
/// # Errors
/// [`ClientError::Malformed`] for a row without a receipt, of the wrong type or about
/// something else, or whose fields differ from its leaf, and for a summary the verified
/// rows contradict; receipt and policy errors as they are.
pub fn verify_view(
    view: &gpb::DataView,
    policy: &Policy,
    query: &Query,
) -> Result<VerifiedView, ClientError> {
    let summary = view
        .summary
        .iter()
        .map(|f| {
            serde_json::from_str(&f.json)
                .map(|v| (f.name.clone(), v))
                .map_err(|e| ClientError::Malformed(format!("summary {}: {e}", f.name)))
        })
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for t in &view.tables {
        for r in &t.rows {
            let row = verify_row(&t.name, r, policy)?;
            let kind = gridledger_core::tx::payload_kind(&pb::TxBody {
                payload: Some(row.payload.clone()),
                ..Default::default()
            });
            if !expected_kinds(&t.name).contains(&kind) {
                return Err(ClientError::Malformed(format!(
                    "a row of table {} proves a {kind} transaction (leaf {})",
                    t.name, row.leaf_index
                )));
            }
            if let Some(asset) = &query.asset {
                let about = match &row.payload {
                    Payload::RegisterInstrument(i) => Some(&i.asset_no),
                    Payload::IssueCertificate(c) => Some(&c.asset_no),
                    Payload::RecordReading(r) => Some(&r.asset_no),
                    Payload::BindCustomer(b) => Some(&b.asset_no),
                    _ => None,
                };
                if let Some(a) = about.filter(|a| *a != asset) {
                    return Err(ClientError::Malformed(format!(
                        "asked about {asset}, leaf {} is about {a}",
                        row.leaf_index
                    )));
                }
            }
            rows.push(row);
        }
    }
    if let Some((from, to)) = &query.period {
        check_coverage(&summary, &rows, from, to)?;
    }
    Ok(VerifiedView {
        title: view.title.clone(),
        summary,
        rows,
    })
}

// The settlement summary must follow from the verified certificate rows.
fn check_coverage(
    summary: &serde_json::Map<String, Value>,
    rows: &[VerifiedRow],
    from: &str,
    to: &str,
) -> Result<(), ClientError> {
    use gridledger_core::metrology::{CertificateRec, uncovered};
    let certs: Vec<CertificateRec> = rows
        .iter()
        .filter_map(|r| match &r.payload {
            Payload::IssueCertificate(c) => Some(CertificateRec::of(c)),
            _ => None,
        })
        .collect();
    let gaps: Vec<Value> = uncovered(&certs, from, to)
        .into_iter()
        .map(|(a, b)| serde_json::json!({"from": a, "to": b}))
        .collect();
    let shown = summary.get("uncovered").cloned().unwrap_or(Value::Null);
    let throughout = summary.get("certified_throughout").cloned();
    if shown != Value::Array(gaps.clone()) || throughout != Some(Value::Bool(gaps.is_empty())) {
        return Err(ClientError::Malformed(format!(
            "the server's coverage summary ({shown}) does not follow from the certificates it proved (uncovered: {})",
            Value::Array(gaps)
        )));
    }
    Ok(())
}

fn verify_row(
    table: &str,
    r: &gpb::RecordRow,
    policy: &Policy,
) -> Result<VerifiedRow, ClientError> {
    if r.receipt.is_empty() {
        return Err(ClientError::Malformed(format!(
            "row {} of {table} came without a receipt",
            r.leaf_index
        )));
    }
    let proven = Receipt::parse(&r.receipt)?.verify(policy)?;
    if proven.index != r.leaf_index {
        return Err(ClientError::Malformed(format!(
            "row names leaf {}, its receipt proves leaf {}",
            r.leaf_index, proven.index
        )));
    }
    let tx = pb::SignedTx::decode(proven.leaf.as_slice())
        .map_err(|e| ClientError::Malformed(format!("proven leaf {}: {e}", r.leaf_index)))?;
    let payload = pb::TxBody::decode(tx.body.as_slice())
        .ok()
        .and_then(|b| b.payload)
        .ok_or_else(|| {
            ClientError::Malformed(format!("proven leaf {} has no payload", r.leaf_index))
        })?;
    let fields: serde_json::Map<String, Value> = serde_json::from_str(&r.json)
        .map_err(|e| ClientError::Malformed(format!("row {}: {e}", r.leaf_index)))?;
    check_matches(&fields, &payload, r.leaf_index)?;
    Ok(VerifiedRow {
        table: table.to_string(),
        fields,
        leaf_index: r.leaf_index,
        payload,
    })
}

// A class II row: unless purged (then it may show no values), its salt and payload must
// hash to the proven leaf's commitment. Returns the payload (None when purged).
fn check_committed(
    f: &serde_json::Map<String, Value>,
    commitment: &[u8],
    value_fields: &[&str],
    bad: &dyn Fn(String) -> ClientError,
) -> Result<Option<Vec<u8>>, ClientError> {
    // Purged, or withheld from an org no longer in the collection: no values shown, and
    // nothing to check but that.
    if ["purged_by", "withheld"]
        .iter()
        .any(|k| f.get(*k).is_some_and(|v| !v.is_null()))
    {
        if value_fields
            .iter()
            .chain(&["payload", "salt"])
            .any(|k| f.get(*k).is_some_and(|v| !v.is_null()))
        {
            return Err(bad("a purged row carries values".into()));
        }
        return Ok(None);
    }
    let hex_field = |k: &str| {
        f.get(k)
            .and_then(Value::as_str)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| bad(format!("{k} is missing or not hex")))
    };
    let salt: [u8; 32] = hex_field("salt")?
        .try_into()
        .map_err(|_| bad("the salt is not 32 bytes".into()))?;
    let payload = hex_field("payload")?;
    if gridledger_core::private::commitment(&salt, &payload).as_slice() != commitment {
        return Err(bad(
            "salt and payload do not match the proven leaf's commitment".into(),
        ));
    }
    Ok(Some(payload))
}

// A customer binding row: the committed payload's account, installation point and first
// day are what the row shows, and so is the replaced binding.
fn check_binding(
    f: &serde_json::Map<String, Value>,
    b: &pb::BindCustomer,
    leaf: u64,
) -> Result<(), ClientError> {
    let bad = |why: String| ClientError::Malformed(format!("binding at leaf {leaf}: {why}"));
    let replaces = f.get("replaces").and_then(Value::as_u64);
    if replaces != b.replaces {
        return Err(bad(format!(
            "the server shows replaces = {replaces:?}, the proven leaf says {:?}",
            b.replaces
        )));
    }
    let fields = ["account", "installation_point", "from"];
    let Some(payload) = check_committed(f, &b.commitment, &fields, &bad)? else {
        return Ok(());
    };
    let c = gridledger_core::private::decode_binding(&payload).map_err(bad)?;
    for (k, want) in [
        ("account", &c.account),
        ("installation_point", &c.installation_point),
        ("from", &c.from),
    ] {
        let got = f.get(k).and_then(Value::as_str);
        if got != Some(want.as_str()) {
            return Err(bad(format!(
                "the server shows {k} = {got:?}, the committed payload says {want:?}"
            )));
        }
    }
    Ok(())
}

// A supplier record row (class II): the salt and payload open the leaf's commitment, and
// the `contents` shown are the committed payload's: every quantity, date, class and
// result (what a connector acts on) is compared.
fn check_supply(
    f: &serde_json::Map<String, Value>,
    commitment: &[u8],
    p: &Payload,
    leaf: u64,
) -> Result<(), ClientError> {
    use gridledger_core::supply::{decode_ack, decode_batch, decode_demand};
    let bad =
        |why: String| ClientError::Malformed(format!("supplier record at leaf {leaf}: {why}"));
    let Some(payload) = check_committed(f, commitment, &["contents"], &bad)? else {
        return Ok(());
    };
    let c = f.get("contents").cloned().unwrap_or(Value::Null);
    let items = |k: &str| {
        c.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let field = |v: &Value, k: &str| {
        v.get(k)
            .map(|x| match x {
                Value::String(s) => s.clone(),
                x => x.to_string(),
            })
            .unwrap_or_default()
    };
    // (what, shown, committed) per item, as text.
    let pairs: Vec<(String, String)> = match p {
        Payload::PublishDemandPlan(_) => {
            let d = decode_demand(&payload).map_err(bad)?;
            let shown = items("lines");
            if shown.len() != d.lines.len() || field(&c, "notes") != d.notes {
                return Err(bad("the plan shown is not the committed one".into()));
            }
            shown
                .iter()
                .zip(&d.lines)
                .map(|(s, l)| {
                    (
                        format!(
                            "{}|{}|{}|{}",
                            field(s, "kind"),
                            field(s, "accuracy_class"),
                            field(s, "month"),
                            field(s, "quantity")
                        ),
                        format!(
                            "{}|{}|{}|{}",
                            gridledger_core::metrology::kind_name(l.kind),
                            l.accuracy_class,
                            l.month,
                            l.quantity
                        ),
                    )
                })
                .collect()
        }
        Payload::AcknowledgeDemand(_) => {
            let a = decode_ack(&payload).map_err(bad)?;
            let shown = items("deliveries");
            if shown.len() != a.deliveries.len()
                || field(&c, "production_plan") != a.production_plan
            {
                return Err(bad(
                    "the acknowledgement shown is not the committed one".into()
                ));
            }
            shown
                .iter()
                .zip(&a.deliveries)
                .map(|(s, d)| {
                    (
                        format!(
                            "{}|{}|{}|{}",
                            field(s, "kind"),
                            field(s, "accuracy_class"),
                            field(s, "date"),
                            field(s, "quantity")
                        ),
                        format!(
                            "{}|{}|{}|{}",
                            gridledger_core::metrology::kind_name(d.kind),
                            d.accuracy_class,
                            d.date,
                            d.quantity
                        ),
                    )
                })
                .collect()
        }
        Payload::PublishTestBatch(b) => {
            let r = decode_batch(&payload, b).map_err(bad)?;
            let shown = items("results");
            if shown.len() != r.results.len() {
                return Err(bad("the results shown are not the committed ones".into()));
            }
            shown
                .iter()
                .zip(&r.results)
                .map(|(s, t)| {
                    let errs: Vec<String> = s
                        .get("errors")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|e| {
                            format!(
                                "{}={}",
                                field(e, "load_point"),
                                field(e, "error_centi_percent")
                            )
                        })
                        .collect();
                    let want: Vec<String> = t
                        .errors
                        .iter()
                        .map(|e| format!("{}={}", e.load_point, e.error_centi_percent))
                        .collect();
                    (
                        format!(
                            "{}|{}|{}|{}",
                            field(s, "asset_no"),
                            field(s, "test_date"),
                            field(s, "passed"),
                            errs.join(";")
                        ),
                        format!(
                            "{}|{}|{}|{}",
                            t.asset_no,
                            t.test_date,
                            t.passed,
                            want.join(";")
                        ),
                    )
                })
                .collect()
        }
        _ => vec![],
    };
    for (shown, committed) in pairs {
        if shown != committed {
            return Err(bad(format!(
                "the server shows {shown}, the committed payload says {committed}"
            )));
        }
    }
    Ok(())
}

// A class II reading row: the salt and payload must hash to the proven leaf's
// commitment, and every value shown must be the payload's. A purged row shows no values.
fn check_reading(
    f: &serde_json::Map<String, Value>,
    r: &pb::RecordReading,
    leaf: u64,
) -> Result<(), ClientError> {
    let bad = |why: String| ClientError::Malformed(format!("reading at leaf {leaf}: {why}"));
    let Some(payload) = check_committed(f, &r.commitment, &["import_wh"], &bad)? else {
        return Ok(());
    };
    let v = gridledger_core::private::decode_reading(&payload).map_err(bad)?;
    let num = |k: &str| f.get(k).and_then(Value::as_u64);
    let list = |k: &str| {
        f.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
    };
    let shown = [
        (
            "import_wh",
            num("import_wh"),
            v.import_wh.iter().sum::<u64>(),
        ),
        (
            "export_wh",
            num("export_wh"),
            v.export_wh.iter().sum::<u64>(),
        ),
        (
            "register_import_wh",
            num("register_import_wh"),
            v.register_import_wh,
        ),
        (
            "register_export_wh",
            num("register_export_wh"),
            v.register_export_wh,
        ),
    ];
    for (k, got, want) in shown {
        if got != Some(want) {
            return Err(bad(format!(
                "the server shows {k} = {got:?}, the committed payload says {want}"
            )));
        }
    }
    for (k, want) in [
        ("import_intervals_wh", &v.import_wh),
        ("export_intervals_wh", &v.export_wh),
    ] {
        if let Some(got) = list(k)
            && got.as_ref() != Some(want)
        {
            return Err(bad(format!(
                "the server's {k} differ from the committed payload"
            )));
        }
    }
    Ok(())
}

/// Checks a record's fields (a view row or a sync event's `record`, with `salt` and
/// `payload` in hex for class II records) against the proven transaction: its
/// identifying fields, and for class II records the commitment and every value shown.
///
/// # Errors
/// [`ClientError::Malformed`] naming the first difference.
pub fn check_matches(
    f: &serde_json::Map<String, Value>,
    p: &Payload,
    leaf: u64,
) -> Result<(), ClientError> {
    let s = |k: &str| {
        f.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // A list of strings, joined by commas (identifiers contain none).
    let list = |k: &str| {
        f.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or("?"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let pairs: Vec<(&str, String, String)> = match p {
        Payload::RegisterInstrument(i) => vec![
            ("asset_no", s("asset_no"), i.asset_no.clone()),
            (
                "accuracy_class",
                s("accuracy_class"),
                i.accuracy_class.clone(),
            ),
            ("owner_org", s("owner_org"), i.owner_org.clone()),
        ],
        Payload::IssueCertificate(c) => vec![
            ("cert_no", s("cert_no"), c.cert_no.clone()),
            ("test_date", s("test_date"), c.test_date.clone()),
            ("valid_until", s("valid_until"), c.valid_until.clone()),
            (
                "passed",
                f.get("passed").map(|v| v.to_string()).unwrap_or_default(),
                c.passed.to_string(),
            ),
        ],
        Payload::RecordReading(r) => {
            check_reading(f, r, leaf)?;
            vec![("day", s("day"), r.day.clone())]
        }
        Payload::BindCustomer(b) => {
            check_binding(f, b, leaf)?;
            vec![]
        }
        Payload::RegisterModel(m) => vec![
            ("model", s("model"), m.model.clone()),
            (
                "accuracy_class",
                s("accuracy_class"),
                m.accuracy_class.clone(),
            ),
            (
                "kind",
                s("kind"),
                gridledger_core::metrology::kind_name(m.kind),
            ),
        ],
        Payload::PublishDemandPlan(d) => {
            check_supply(f, &d.commitment, p, leaf)?;
            vec![
                ("plan_id", s("plan_id"), d.plan_id.clone()),
                ("suppliers", list("suppliers"), d.suppliers.join(",")),
            ]
        }
        Payload::AcknowledgeDemand(a) => {
            check_supply(f, &a.commitment, p, leaf)?;
            vec![
                ("plan_id", s("plan_id"), a.plan_id.clone()),
                (
                    "revises",
                    f.get("revises").map(Value::to_string).unwrap_or_default(),
                    a.revises
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "null".into()),
                ),
            ]
        }
        Payload::PublishTestBatch(b) => {
            check_supply(f, &b.commitment, p, leaf)?;
            vec![
                ("batch_id", s("batch_id"), b.batch_id.clone()),
                ("buyer_org", s("buyer_org"), b.buyer_org.clone()),
                ("asset_nos", list("asset_nos"), b.asset_nos.join(",")),
            ]
        }
        Payload::IssueCalibration(c) => vec![
            ("calibration_cert", s("calibration_cert"), c.cert_no.clone()),
            ("valid_until", s("valid_until"), c.valid_until.clone()),
        ],
        Payload::RegisterEquipment(e) => {
            vec![("equipment_no", s("equipment_no"), e.equipment_no.clone())]
        }
        Payload::GrantAuthorisation(a) => vec![("number", s("number"), a.number.clone())],
        Payload::RecordAccreditation(a) => vec![("number", s("number"), a.number.clone())],
        Payload::RegisterPersonnelCertificate(c) => vec![("number", s("number"), c.number.clone())],
        Payload::SchedulePlan(p) => vec![("plan_id", s("plan_id"), p.plan_id.clone())],
        _ => vec![],
    };
    for (field, shown, proven) in pairs {
        if shown != proven {
            return Err(ClientError::Malformed(format!(
                "leaf {leaf}: the server shows {field} = {shown}, the proven transaction says {proven}"
            )));
        }
    }
    Ok(())
}
