//! Supplier collaboration for connectors and operators: the class II payloads of demand
//! plans, acknowledgements and factory test batches built from files (with errors that
//! name the row and field), and the resumable sync stream with a cursor file.

use std::path::Path;

use gridledger_core::pb;
use gridledger_proto::v1 as gpb;
use serde::Deserialize;

use crate::error::ClientError;
use crate::profile::Profile;

fn kind_of(s: &str, at: &str) -> Result<i32, ClientError> {
    let k = match s.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
        "meter" => pb::InstrumentKind::Meter,
        "ct" | "currenttransformer" => pb::InstrumentKind::CurrentTransformer,
        "vt" | "voltagetransformer" => pb::InstrumentKind::VoltageTransformer,
        _ => {
            return Err(ClientError::Config(format!(
                "{at}: type {s:?} is not meter, current-transformer (ct) or voltage-transformer (vt)"
            )));
        }
    };
    Ok(k as i32)
}

/// A demand plan of one line.
///
/// # Errors
/// A bad type or a line the contracts would refuse.
pub fn demand_body(
    kind: &str,
    class: &str,
    month: &str,
    quantity: u32,
    notes: &str,
) -> Result<Vec<u8>, ClientError> {
    let body = pb::DemandPlanBody {
        lines: vec![pb::DemandLine {
            kind: kind_of(kind, "--type")?,
            accuracy_class: class.into(),
            month: month.into(),
            quantity,
        }],
        notes: notes.into(),
    };
    let bytes = prost::Message::encode_to_vec(&body);
    gridledger_core::supply::decode_demand(&bytes).map_err(ClientError::Config)?;
    Ok(bytes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckFile {
    production_plan: String,
    deliveries: Vec<DeliveryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryFile {
    #[serde(rename = "type", alias = "kind")]
    kind: String,
    accuracy_class: String,
    quantity: u32,
    date: String,
}

/// An acknowledgement's payload from a JSON plan file: `{"production_plan": "...",
/// "deliveries": [{"type": "meter", "accuracy_class": "1", "quantity": 1200, "date":
/// "2027-01-10"}]}`.
///
/// # Errors
/// What is wrong with the file, naming the delivery.
pub fn ack_body(file: &Path) -> Result<Vec<u8>, ClientError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ClientError::Config(format!("cannot read {}: {e}", file.display())))?;
    let f: AckFile = serde_json::from_str(&text)
        .map_err(|e| ClientError::Config(format!("{}: {e}", file.display())))?;
    let body = pb::AckBody {
        production_plan: f.production_plan,
        deliveries: f
            .deliveries
            .iter()
            .enumerate()
            .map(|(n, d)| {
                Ok(pb::Delivery {
                    kind: kind_of(&d.kind, &format!("delivery {}", n + 1))?,
                    accuracy_class: d.accuracy_class.clone(),
                    quantity: d.quantity,
                    date: d.date.clone(),
                })
            })
            .collect::<Result<_, ClientError>>()?,
    };
    let bytes = prost::Message::encode_to_vec(&body);
    gridledger_core::supply::decode_ack(&bytes)
        .map_err(|e| ClientError::Config(format!("{}: {e}", file.display())))?;
    Ok(bytes)
}

/// Parses `"<percent>"` with at most two decimals into hundredths of a percent.
fn centi_percent(v: &str) -> Option<i32> {
    let v = v.trim();
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty()
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 6
    {
        return None;
    }
    let frac = format!("{frac:0<2}");
    let n: i32 = int.parse::<i32>().ok()? * 100 + frac.parse::<i32>().ok()?;
    Some(if neg { -n } else { n })
}

/// The results of a factory test batch from a CSV or JSON file (by extension).
///
/// CSV: a header `asset_no,test_date,passed,errors`, then one instrument per row;
/// `passed` is `true` or `false`; `errors` is `load point=percent` pairs separated by `;`
/// (for example `Imax PF1.0=0.12;Ib PF1.0=-0.05`). JSON: `{"results": [{"asset_no",
/// "test_date", "passed", "errors": [{"load_point", "error_percent"}]}]}`.
///
/// # Errors
/// The row (the file's line number) and field at fault.
pub fn batch_results(file: &Path) -> Result<pb::TestBatchResults, ClientError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ClientError::Config(format!("cannot read {}: {e}", file.display())))?;
    let name = file.display().to_string();
    let results = if file.extension().is_some_and(|e| e == "json") {
        batch_json(&text, &name)?
    } else {
        batch_csv(&text, &name)?
    };
    if results.is_empty() {
        return Err(ClientError::Config(format!("{name}: no instruments")));
    }
    Ok(pb::TestBatchResults { results })
}

fn check_row(t: &pb::InstrumentTest, at: &str) -> Result<(), ClientError> {
    let bad = |field: &str, why: String| ClientError::Config(format!("{at}, field {field}: {why}"));
    if !gridledger_core::contract::valid_ident(&t.asset_no) {
        return Err(bad(
            "asset_no",
            format!("{:?} is not an asset number", t.asset_no),
        ));
    }
    if gridledger_core::metrology::day_number(&t.test_date).is_none() {
        return Err(bad(
            "test_date",
            format!("expected YYYY-MM-DD, got {:?}", t.test_date),
        ));
    }
    for e in &t.errors {
        gridledger_core::metrology::parse_load_point(&e.load_point)
            .map_err(|w| bad("errors", w))?;
    }
    Ok(())
}

fn batch_csv(text: &str, name: &str) -> Result<Vec<pb::InstrumentTest>, ClientError> {
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, h)| h.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if header.replace(' ', "") != "asset_no,test_date,passed,errors" {
        return Err(ClientError::Config(format!(
            "{name}, row 1: the header must be asset_no,test_date,passed,errors, got {header:?}"
        )));
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{name}, row {}", n + 1);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 4 {
            return Err(ClientError::Config(format!(
                "{at}: expected 4 fields (asset_no,test_date,passed,errors), got {}",
                fields.len()
            )));
        }
        let passed = match fields[2] {
            "true" => true,
            "false" => false,
            other => {
                return Err(ClientError::Config(format!(
                    "{at}, field passed: expected true or false, got {other:?}"
                )));
            }
        };
        let mut errors = Vec::new();
        for pair in fields[3].split(';').filter(|p| !p.trim().is_empty()) {
            let (lp, v) = pair.split_once('=').ok_or_else(|| {
                ClientError::Config(format!(
                    "{at}, field errors: {pair:?} is not \"load point=percent\""
                ))
            })?;
            let c = centi_percent(v).ok_or_else(|| {
                ClientError::Config(format!(
                    "{at}, field errors: {v:?} is not a percent with at most two decimals"
                ))
            })?;
            errors.push(pb::LoadPointError {
                load_point: lp.trim().into(),
                error_centi_percent: c,
            });
        }
        let t = pb::InstrumentTest {
            asset_no: fields[0].into(),
            test_date: fields[1].into(),
            passed,
            errors,
        };
        check_row(&t, &at)?;
        out.push(t);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchFile {
    results: Vec<TestFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    asset_no: String,
    test_date: String,
    passed: bool,
    #[serde(default)]
    errors: Vec<ErrorFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorFile {
    load_point: String,
    error_percent: serde_json::Value,
}

fn batch_json(text: &str, name: &str) -> Result<Vec<pb::InstrumentTest>, ClientError> {
    let f: BatchFile =
        serde_json::from_str(text).map_err(|e| ClientError::Config(format!("{name}: {e}")))?;
    f.results
        .into_iter()
        .enumerate()
        .map(|(n, r)| {
            let at = format!("{name}, result {}", n + 1);
            let errors = r
                .errors
                .iter()
                .map(|e| {
                    let v = match &e.error_percent {
                        serde_json::Value::String(s) => s.clone(),
                        v => v.to_string(),
                    };
                    centi_percent(&v)
                        .map(|c| pb::LoadPointError {
                            load_point: e.load_point.clone(),
                            error_centi_percent: c,
                        })
                        .ok_or_else(|| {
                            ClientError::Config(format!(
                                "{at}, field error_percent: {v} is not a percent with at most two decimals"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?;
            let t = pb::InstrumentTest {
                asset_no: r.asset_no,
                test_date: r.test_date,
                passed: r.passed,
                errors,
            };
            check_row(&t, &at)?;
            Ok(t)
        })
        .collect()
}

/// Runs a `gridledger supplier` command.
///
/// # Errors
/// Bad files, transport errors, and the contracts' refusals as the node reports them.
pub async fn run(p: &Profile, command: crate::cli::SupplierCommand) -> Result<(), ClientError> {
    use crate::cli::SupplierCommand as C;
    use gridledger_core::pb::tx_body::Payload;
    let salt = || -> [u8; 32] { rand::random() };
    match command {
        C::Demand {
            to,
            kind,
            class,
            month,
            quantity,
            id,
            notes,
            collection,
        } => {
            let value = demand_body(&kind, &class, &month, quantity, &notes)?;
            let plan_id = id.unwrap_or_else(|| {
                format!(
                    "DP-{}-{:08x}",
                    p.org.as_deref().unwrap_or("plan"),
                    rand::random::<u32>()
                )
            });
            let s = salt();
            let c = gridledger_core::private::commitment(&s, &value);
            let tx = p.sign(Payload::PublishDemandPlan(pb::PublishDemandPlan {
                plan_id: plan_id.clone(),
                suppliers: to,
                commitment: c.to_vec(),
                collection,
            }))?;
            let r = submit(p, "demand", tx, s, value).await?;
            println!(
                "committed: leaf {} in block {}",
                r.leaf_index, r.block_height
            );
            println!("plan_id: {plan_id}");
        }
        C::Ack {
            demand,
            plan,
            revises,
            collection,
        } => {
            let value = ack_body(&plan)?;
            let s = salt();
            let c = gridledger_core::private::commitment(&s, &value);
            let tx = p.sign(Payload::AcknowledgeDemand(pb::AcknowledgeDemand {
                plan_id: demand,
                commitment: c.to_vec(),
                collection,
                revises,
            }))?;
            let r = submit(p, "ack", tx, s, value).await?;
            println!(
                "committed: leaf {} in block {}",
                r.leaf_index, r.block_height
            );
        }
        C::Batch {
            file,
            id,
            buyer,
            collection,
        } => {
            let results = batch_results(&file)?;
            let assets: Vec<String> = results.results.iter().map(|t| t.asset_no.clone()).collect();
            let value = prost::Message::encode_to_vec(&results);
            let batch_id = id.unwrap_or_else(|| {
                use sha2::Digest as _;
                let h = sha2::Sha256::digest(&value);
                format!("FTB-{}", &hex::encode(h)[..16])
            });
            let buyer = match buyer {
                Some(b) => b,
                None => {
                    gpb::data_service_client::DataServiceClient::new(crate::grpc::channel(p).await?)
                        .get_meter(gpb::GetMeterRequest {
                            asset_no: assets[0].clone(),
                        })
                        .await?
                        .into_inner()
                        .owner_org
                }
            };
            let s = salt();
            let c = gridledger_core::private::commitment(&s, &value);
            let tx = p.sign(Payload::PublishTestBatch(pb::PublishTestBatch {
                batch_id: batch_id.clone(),
                buyer_org: buyer,
                asset_nos: assets,
                commitment: c.to_vec(),
                collection,
            }))?;
            let r = submit(p, "batch", tx, s, value).await?;
            println!(
                "committed: leaf {} in block {}",
                r.leaf_index, r.block_height
            );
            println!("batch_id: {batch_id}");
        }
        C::Model {
            model,
            kind,
            class,
            description,
        } => {
            let tx = p.sign(Payload::RegisterModel(pb::RegisterModel {
                model,
                kind: kind_of(&kind, "--type")?,
                accuracy_class: class,
                description,
            }))?;
            let mut c = gpb::supplier_service_client::SupplierServiceClient::new(
                crate::grpc::leader_channel(p).await?,
            );
            let r = c
                .register_model(gpb::SubmitRequest {
                    signed_tx: prost::Message::encode_to_vec(&tx).into(),
                    private_payload: None,
                })
                .await?
                .into_inner();
            println!(
                "committed: leaf {} in block {}",
                r.leaf_index, r.block_height
            );
        }
        C::Plans { id, json } => {
            let v = view(p, "plans", id).await?;
            crate::cli::print_verified(p, &v, json, &Default::default())?;
        }
        C::Models { supplier, json } => {
            let v = gpb::supplier_service_client::SupplierServiceClient::new(
                crate::grpc::channel(p).await?,
            )
            .max_decoding_message_size(crate::grpc::MAX_RESPONSE_BYTES)
            .list_models(gpb::SupplyQuery {
                id: supplier,
                receipts: true,
            })
            .await?
            .into_inner();
            crate::cli::print_verified(p, &v, json, &Default::default())?;
        }
        C::Batches { id, json } => {
            let v = view(p, "batches", id).await?;
            crate::cli::print_verified(p, &v, json, &Default::default())?;
        }
    }
    Ok(())
}

async fn submit(
    p: &Profile,
    what: &str,
    tx: pb::SignedTx,
    salt: [u8; 32],
    payload: Vec<u8>,
) -> Result<gpb::SubmitResponse, ClientError> {
    let mut c = gpb::supplier_service_client::SupplierServiceClient::new(
        crate::grpc::leader_channel(p).await?,
    );
    let req = gpb::SubmitRequest {
        signed_tx: prost::Message::encode_to_vec(&tx).into(),
        private_payload: Some(gpb::PrivatePayload {
            salt: salt.to_vec(),
            payload,
        }),
    };
    Ok(match what {
        "demand" => c.publish_demand_plan(req).await?,
        "ack" => c.acknowledge_demand(req).await?,
        _ => c.publish_test_batch(req).await?,
    }
    .into_inner())
}

/// A supplier records view with receipts, read with a single-use `supply:<org>` token.
async fn view(p: &Profile, what: &str, id: String) -> Result<gpb::DataView, ClientError> {
    let org = p
        .org
        .clone()
        .ok_or_else(|| ClientError::Config("set org in the profile".into()))?;
    let token = crate::grpc::dynamic_token(p, vec![format!("supply:{org}")]).await?;
    let mut c =
        gpb::supplier_service_client::SupplierServiceClient::new(crate::grpc::channel(p).await?)
            .max_decoding_message_size(crate::grpc::MAX_RESPONSE_BYTES);
    let q = crate::grpc::with_bearer(gpb::SupplyQuery { id, receipts: true }, &token)?;
    Ok(if what == "plans" {
        c.list_demand_plans(q).await?
    } else {
        c.list_test_batches(q).await?
    }
    .into_inner())
}

/// Writes `cursor` to `file` atomically (a temporary file in the same directory,
/// synced, then renamed), so a crash leaves either the old cursor or the new one.
///
/// # Errors
/// I/O failures.
pub fn save_cursor(file: &Path, cursor: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    // `<name>.tmp` beside it (not `with_extension`, which would give a.json and a.txt
    // the same temporary file).
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = file.with_file_name(name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(cursor.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself must survive a crash too.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `gridledger sync`: prints the profile org's events as JSON lines, from the cursor in
/// `cursor_file` (when it exists), saving each printed event's cursor there before the
/// next is read; stops after `max` events when given.
///
/// # Errors
/// Transport, authorisation and cursor errors as the node reports them.
pub async fn sync(
    p: &Profile,
    org: Option<String>,
    cursor_file: Option<&Path>,
    max: Option<u32>,
    receipts: bool,
) -> Result<(), ClientError> {
    use std::io::Write as _;
    let org = org
        .or_else(|| p.org.clone())
        .ok_or_else(|| ClientError::Config("sync: pass --org or set org in the profile".into()))?;
    let cursor = match cursor_file {
        Some(f) if f.exists() => std::fs::read_to_string(f)
            .map_err(|e| ClientError::Config(format!("cannot read {}: {e}", f.display())))?
            .trim()
            .to_string(),
        _ => String::new(),
    };
    let token = crate::grpc::dynamic_token(p, vec![format!("supply:{org}")]).await?;
    let mut client =
        gpb::supplier_service_client::SupplierServiceClient::new(crate::grpc::channel(p).await?)
            .max_decoding_message_size(crate::grpc::MAX_RESPONSE_BYTES);
    let mut stream = client
        .sync(crate::grpc::with_bearer(
            gpb::SyncRequest {
                cursor,
                receipts,
                max_events: max.unwrap_or(0),
            },
            &token,
        )?)
        .await?
        .into_inner();
    let stdout = std::io::stdout();
    while let Some(ev) = stream.message().await? {
        let line = event_line(&ev);
        {
            let mut out = stdout.lock();
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(|e| ClientError::Config(format!("stdout: {e}")))?;
        }
        if let Some(f) = cursor_file {
            save_cursor(f, &ev.cursor)
                .map_err(|e| ClientError::Config(format!("cannot write {}: {e}", f.display())))?;
        }
    }
    Ok(())
}

/// One event as a JSON line: `cursor`, `type`, `leaf_index`, `record`, and `salt`,
/// `payload` (hex) and `receipt` when present (the same shape as the SSE route's data).
pub fn event_line(ev: &gpb::SyncEvent) -> serde_json::Value {
    let mut v = serde_json::json!({
        "cursor": ev.cursor, "type": ev.r#type, "leaf_index": ev.leaf_index,
        "record": serde_json::from_str::<serde_json::Value>(&ev.json).unwrap_or(serde_json::Value::Null),
    });
    if !ev.payload.is_empty() {
        v["salt"] = hex::encode(&ev.salt).into();
        v["payload"] = hex::encode(&ev.payload).into();
    }
    if !ev.receipt.is_empty() {
        v["receipt"] = ev.receipt.clone().into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents() {
        assert_eq!(centi_percent("0.12"), Some(12));
        assert_eq!(centi_percent("-0.5"), Some(-50));
        assert_eq!(centi_percent("+1"), Some(100));
        assert_eq!(centi_percent("1.234"), None);
        assert_eq!(centi_percent("abc"), None);
        assert_eq!(centi_percent(""), None);
    }

    #[test]
    fn csv_errors_name_row_and_field() {
        let head = "asset_no,test_date,passed,errors\n";
        let ok = format!("{head}GN-1,2026-10-01,true,Ib PF1.0=0.05;Imax PF1.0=-0.10\n");
        let r = batch_csv(&ok, "b.csv").unwrap();
        assert_eq!(r[0].errors[1].error_centi_percent, -10);
        for (body, want) in [
            ("GN-1,2026-10-01,yes,\n", "row 2, field passed"),
            (
                "GN-1,2026-10-01,true,Ib PF1.0=0.05\nGN-2,2026-13-01,true,\n",
                "row 3, field test_date",
            ),
            ("GN-1,2026-10-01,true,Ib PF1.0\n", "row 2, field errors"),
            (
                "GN-1,2026-10-01,true,Ib PF1.0=lots\n",
                "row 2, field errors",
            ),
            ("GN-1,2026-10-01,true,sideways=0.1\n", "row 2, field errors"),
            ("GN 1,2026-10-01,true,\n", "row 2, field asset_no"),
            ("GN-1,2026-10-01\n", "row 2: expected 4 fields"),
        ] {
            let e = batch_csv(&format!("{head}{body}"), "b.csv")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
        let e = batch_csv("asset,date\n", "b.csv").unwrap_err().to_string();
        assert!(e.contains("row 1: the header"), "{e}");
    }
}
