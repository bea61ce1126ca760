//! The metrology rules (DOMAIN.md §4.2, §4.3) as tables: each case changes one thing in
//! a world where everything is valid, and names the rule it must break (or none). Dates
//! sit at the edges of validity: the last valid day passes, the day after fails.

use std::collections::BTreeMap;

use gridledger_core::contract::{
    ApprovalPolicy, ChannelDef, CollectionDef, Effect, NodeRecord, Proposal, RULES, RecordSource,
    RejectKind, Rejection, SignerInfo, StateView,
};
use gridledger_core::metrology::{
    self, CertificateRec, DisputeRec, LoadPoint, chain, error_limit_centi, parse_load_point,
    percent_ppm,
};
use gridledger_core::pb::{self, CertificateKind as CK, InstrumentKind as IK, OrgKind};

/// A state view over maps: orgs and records (leaf indexes count up as records land).
#[derive(Default, Clone)]
struct World {
    orgs: BTreeMap<String, OrgKind>,
    records: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
    leaf: u64,
}

impl StateView for World {
    fn signer(&self, _: &[u8; 32]) -> Option<SignerInfo> {
        None
    }
    fn has_signers(&self) -> bool {
        true
    }
    fn nonce_used(&self, _: &[u8; 32], _: u64) -> bool {
        false
    }
    fn org_kind(&self, org_id: &str) -> Option<OrgKind> {
        self.orgs.get(org_id).copied()
    }
    fn instrument_owner(&self, asset_no: &str) -> Option<String> {
        metrology::get::<metrology::InstrumentRec>(self, &metrology::keys::instrument(asset_no))
            .map(|(_, r)| r.owner_org)
    }
    fn reading(&self, _: &str, _: &str) -> Option<u64> {
        None
    }
    fn proposal(&self, _: &str) -> Option<Proposal> {
        None
    }
    fn org_count(&self) -> usize {
        self.orgs.len()
    }
    fn node(&self, _: u64) -> Option<NodeRecord> {
        None
    }
    fn channel(&self, _: &str) -> Option<ChannelDef> {
        None
    }
    fn collection(&self, _: &str) -> Option<CollectionDef> {
        None
    }
    fn approval_policy(&self) -> ApprovalPolicy {
        ApprovalPolicy::default()
    }
}

impl RecordSource for World {
    fn record(&self, key: &[u8]) -> Option<(u64, Vec<u8>)> {
        self.records.get(key).cloned()
    }
    fn records(&self, prefix: &[u8], limit: usize) -> Vec<gridledger_core::contract::RecordEntry> {
        self.records
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, (l, v))| (k.clone(), *l, v.clone()))
            .collect()
    }
}

impl World {
    fn apply(&mut self, r: Result<Vec<Effect>, Rejection>) {
        for e in r.expect("accepted") {
            if let Effect::Record(k, v) = e {
                self.records.insert(k, (self.leaf, v));
            }
        }
        self.leaf += 1;
    }
}

fn who(org: &str, roles: &[&str]) -> SignerInfo {
    SignerInfo {
        org_id: org.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        active: true,
    }
}

fn regulator() -> SignerInfo {
    who("reg", &["regulator", "admin"])
}
fn lab() -> SignerInfo {
    who("lab", &["verifier"])
}

fn equipment(no: &str, kind: pb::EquipmentKind, acc: &str, owner: &str) -> pb::RegisterEquipment {
    pb::RegisterEquipment {
        equipment_no: no.into(),
        kind: kind as i32,
        accuracy: acc.into(),
        range: "0-100A".into(),
        owner_org: owner.into(),
        valid_until: if kind == pb::EquipmentKind::NationalStandard {
            "2035-12-31".into()
        } else {
            String::new()
        },
    }
}

fn calibration(
    cert: &str,
    eq: &str,
    by: &str,
    org: &str,
    date: &str,
    until: &str,
) -> pb::IssueCalibration {
    pb::IssueCalibration {
        cert_no: cert.into(),
        equipment_no: eq.into(),
        calibrating_equipment: by.into(),
        institution_org: org.into(),
        date: date.into(),
        uncertainty: "0.005".into(),
        valid_until: until.into(),
    }
}

/// The valid world: a national standard, a reference at the lab calibrated against it
/// (valid to 2027-06-01), a working standard calibrated against the reference on
/// 2025-12-15 (valid to 2026-12-31), the lab authorised for meters 0.2S..2 from
/// 2024-01-01 to 2028-12-31, verifier v1 certified to 2029-12-31, and meter M1 (class 1)
/// of grid company "grid" made by supplier "sup".
fn world() -> World {
    let mut w = World::default();
    for (o, k) in [
        ("reg", OrgKind::Regulator),
        ("lab", OrgKind::Institution),
        ("lab2", OrgKind::Institution),
        ("grid", OrgKind::GridCompany),
        ("sup", OrgKind::Supplier),
        ("sup2", OrgKind::Supplier),
    ] {
        w.orgs.insert(o.into(), k);
    }
    let r = metrology::register_equipment(
        &w,
        &regulator(),
        &equipment("NAT", pb::EquipmentKind::NationalStandard, "0.002", "reg"),
    );
    w.apply(r);
    for (no, kind, acc) in [
        ("REF", pb::EquipmentKind::StandardMeter, "0.01"),
        ("STD", pb::EquipmentKind::TestBench, "0.05"),
        ("COARSE", pb::EquipmentKind::TestBench, "0.1"),
    ] {
        let r = metrology::register_equipment(
            &w,
            &who("lab", &["admin"]),
            &equipment(no, kind, acc, "lab"),
        );
        w.apply(r);
    }
    let r = metrology::issue_calibration(
        &w,
        &regulator(),
        &calibration("C-REF", "REF", "NAT", "reg", "2025-06-02", "2027-06-01"),
    );
    w.apply(r);
    // The regulator calibrated the lab's reference: the lab accepts it (4.3/acceptance).
    let r = metrology::accept_calibration(
        &w,
        &who("lab", &["admin"]),
        &pb::AcceptCalibration {
            cert_no: "C-REF".into(),
        },
    );
    w.apply(r);
    for (c, eq) in [("C-STD", "STD"), ("C-COARSE", "COARSE")] {
        let r = metrology::issue_calibration(
            &w,
            &lab(),
            &calibration(c, eq, "REF", "lab", "2025-12-15", "2026-12-31"),
        );
        w.apply(r);
    }
    let r = metrology::grant_authorisation(
        &w,
        &regulator(),
        &pb::GrantAuthorisation {
            number: "A-1".into(),
            institution_org: "lab".into(),
            scope: vec![pb::AuthorisationScope {
                kind: IK::Meter as i32,
                accuracy_classes: vec!["0.2S".into(), "0.5S".into(), "1".into(), "2".into()],
            }],
            valid_from: "2024-01-01".into(),
            valid_until: "2028-12-31".into(),
        },
    );
    w.apply(r);
    let r = metrology::register_personnel(
        &w,
        &regulator(),
        &pb::RegisterPersonnelCertificate {
            number: "P-1".into(),
            institution_org: "lab".into(),
            holder: "v1".into(),
            scope: vec![IK::Meter as i32],
            valid_from: "2024-01-01".into(),
            valid_until: "2029-12-31".into(),
        },
    );
    w.apply(r);
    for (asset, class) in [("M1", "1"), ("M02S", "0.2S")] {
        let details = metrology::check_instrument(&w, &instrument(asset, class)).unwrap();
        w.records.insert(
            metrology::keys::instrument(asset),
            (w.leaf, serde_json::to_vec(&details).unwrap()),
        );
        w.leaf += 1;
    }
    w
}

fn instrument(asset: &str, class: &str) -> pb::RegisterInstrument {
    pb::RegisterInstrument {
        asset_no: asset.into(),
        serial_no: format!("S-{asset}"),
        manufacturer_org: "sup".into(),
        model: "DDZY-1".into(),
        kind: IK::Meter as i32,
        accuracy_class: class.into(),
        ratings: "220V 5(60)A".into(),
        owner_org: "grid".into(),
    }
}

fn lp(point: &str, err: i32) -> pb::LoadPointError {
    pb::LoadPointError {
        load_point: point.into(),
        error_centi_percent: err,
    }
}

/// A valid periodic verification of M1 (class 1) on 2026-06-10.
fn cert() -> pb::IssueCertificate {
    pb::IssueCertificate {
        cert_no: "VC-1".into(),
        asset_no: "M1".into(),
        institution_org: "lab".into(),
        kind: CK::PeriodicVerification as i32,
        verifier: "v1".into(),
        checker: "c1".into(),
        equipment: vec!["STD".into()],
        test_date: "2026-06-10".into(),
        valid_until: "2032-06-09".into(),
        passed: true,
        errors: vec![
            lp("Imax PF1.0", 40),
            lp("Ib PF1.0", -20),
            lp("0.1Ib PF1.0", 90),
            lp("Ib PF0.5L", 60),
        ],
        temperature_deci_c: 230,
        humidity_deci_pct: 500,
        dispute_id: String::new(),
    }
}

fn rule_of(r: &Result<Vec<Effect>, Rejection>) -> Option<&'static str> {
    match r {
        Ok(_) => None,
        Err(e) => {
            assert!(RULES.contains(&e.rule), "rule {} is not in RULES", e.rule);
            Some(e.rule)
        }
    }
}

#[test]
fn decimals_and_percentages_parse_exactly() {
    for (s, want) in [
        ("0.05", Some(500)),
        ("0.002", Some(20)),
        ("1", Some(10_000)),
        ("0.0001", Some(1)),
        ("100", Some(1_000_000)),
        ("100.0001", None),
        ("0", None),
        ("0.00001", None),
        (".5", None),
        ("5.", None),
        ("-1", None),
        ("1e-3", None),
        (" 1", None),
        ("", None),
    ] {
        assert_eq!(percent_ppm(s), want, "{s:?}");
    }
}

#[test]
fn load_points_and_error_limits_follow_the_class_tables() {
    for (s, want) in [
        ("Ib PF1.0", Ok((1000, true))),
        ("0.1Ib PF1.0", Ok((100, true))),
        ("0.05In PF0.5L", Ok((50, false))),
        ("Imax PF0.8C", Ok((u32::MAX, false))),
        ("5%In", Ok((50, true))),
        ("120%In", Ok((1200, true))),
        ("Ib PF0.9", Err("power factor")),
        ("0Ib PF1.0", Err("zero")),
        ("Ib PF1.0 extra", Err("expected")),
        ("10A PF1.0", Err("current must be")),
        ("", Err("empty")),
    ] {
        match (parse_load_point(s), want) {
            (Ok(p), Ok((c, u))) => assert_eq!((p.current_milli, p.unity_pf), (c, u), "{s:?}"),
            (Err(e), Err(w)) => assert!(e.contains(w), "{s:?}: {e}"),
            (got, want) => panic!("{s:?}: got {got:?}, want {want:?}"),
        }
    }
    let at = |c: u32, unity_pf: bool| LoadPoint {
        current_milli: c,
        unity_pf,
    };
    for (kind, class, point, want) in [
        // IEC 62053-21 class 1: 1.5 % from 0.05 Ib, 1.0 % from 0.1 Ib; reactive 1.5 %
        // from 0.1 Ib, 1.0 % from 0.2 Ib.
        (IK::Meter, "1", at(50, true), Some(150)),
        (IK::Meter, "1", at(99, true), Some(150)),
        (IK::Meter, "1", at(100, true), Some(100)),
        (IK::Meter, "1", at(49, true), None),
        (IK::Meter, "1", at(100, false), Some(150)),
        (IK::Meter, "1", at(200, false), Some(100)),
        (IK::Meter, "1", at(99, false), None),
        (IK::Meter, "2", at(u32::MAX, true), Some(200)),
        // IEC 62053-22 class 0.2S: 0.4 % from 0.01 In, 0.2 % from 0.05 In.
        (IK::Meter, "0.2S", at(10, true), Some(40)),
        (IK::Meter, "0.2S", at(50, true), Some(20)),
        (IK::Meter, "0.2S", at(100, false), Some(30)),
        (IK::Meter, "0.2S", at(9, true), None),
        // EN 50470-3 letters follow their IEC counterparts.
        (IK::Meter, "B", at(100, true), Some(100)),
        (IK::Meter, "D", at(50, true), Some(20)),
        // IEC 61869-2 CT ratio error limits.
        (IK::CurrentTransformer, "0.5S", at(10, true), Some(150)),
        (IK::CurrentTransformer, "0.5S", at(50, true), Some(75)),
        (IK::CurrentTransformer, "0.5S", at(1200, true), Some(50)),
        (IK::CurrentTransformer, "0.5", at(10, true), None),
        (IK::CurrentTransformer, "0.2", at(200, true), Some(35)),
        (IK::CurrentTransformer, "0.2", at(1000, true), Some(20)),
        (IK::VoltageTransformer, "0.2", at(1000, true), Some(20)),
        (IK::Meter, "0.1", at(1000, true), None),
        (IK::VoltageTransformer, "0.5S", at(1000, true), None),
    ] {
        assert_eq!(
            error_limit_centi(kind, class, point).ok(),
            want,
            "{kind:?} {class} {point:?}"
        );
    }
}

#[test]
fn a_chain_holds_only_while_every_link_is_in_force() {
    let w = world();
    let links = chain(&w, "STD", "2026-06-10").unwrap();
    let names: Vec<&str> = links
        .iter()
        .map(|l| l.equipment.equipment_no.as_str())
        .collect();
    assert_eq!(names, ["STD", "REF", "NAT"]);
    // The last valid day of the working standard's calibration, and the day after.
    assert!(chain(&w, "STD", "2026-12-31").is_ok());
    let e = chain(&w, "STD", "2027-01-01").unwrap_err();
    assert!(e.contains("C-STD expired on 2026-12-31"), "{e}");
    // Before any calibration.
    let e = chain(&w, "STD", "2025-12-14").unwrap_err();
    assert!(e.contains("no calibration on or before"), "{e}");
    // A link above can expire first: recalibrate STD until 2028, the reference still
    // expires on 2027-06-01.
    let mut w2 = w.clone();
    let r = metrology::issue_calibration(
        &w2,
        &lab(),
        &calibration("C-STD-2", "STD", "REF", "lab", "2026-12-01", "2028-12-31"),
    );
    w2.apply(r);
    assert!(chain(&w2, "STD", "2027-06-01").is_ok());
    let e = chain(&w2, "STD", "2027-06-02").unwrap_err();
    assert!(e.contains("REF") && e.contains("expired"), "{e}");
    assert!(
        chain(&w, "NOPE", "2026-06-10")
            .unwrap_err()
            .contains("not registered")
    );
}

#[test]
fn rule_4_3_calibration_needs_a_higher_level_in_force() {
    let ok = calibration("C-NEW", "COARSE", "REF", "lab", "2026-03-01", "2027-03-01");
    let cases: Vec<(&str, pb::IssueCalibration, SignerInfo, Option<&str>)> = vec![
        ("valid", ok, lab(), None),
        (
            "calibrating equipment less accurate",
            calibration("C-X", "STD", "COARSE", "lab", "2026-03-01", "2027-03-01"),
            lab(),
            Some("4.3/level"),
        ),
        (
            "calibrating equipment's calibration expired on the date",
            calibration("C-X", "COARSE", "STD", "lab", "2027-01-01", "2027-06-01"),
            lab(),
            Some("4.3/equipment"),
        ),
        (
            "calibrating equipment not calibrated yet on the date",
            calibration("C-X", "COARSE", "STD", "lab", "2025-12-14", "2026-06-01"),
            lab(),
            Some("4.3/equipment"),
        ),
        (
            "last valid day of the calibrating equipment",
            calibration("C-X", "COARSE", "STD", "lab", "2026-12-31", "2027-06-01"),
            lab(),
            None,
        ),
        (
            "another org's equipment",
            calibration("C-X", "COARSE", "REF", "lab2", "2026-03-01", "2027-03-01"),
            who("lab2", &["verifier"]),
            Some("4.3/calibration"),
        ),
        (
            "in another org's name",
            calibration("C-X", "COARSE", "REF", "lab2", "2026-03-01", "2027-03-01"),
            lab(),
            Some("4.3/calibration"),
        ),
        (
            "a national standard is not calibrated",
            calibration("C-X", "NAT", "REF", "lab", "2026-03-01", "2027-03-01"),
            lab(),
            Some("4.3/level"),
        ),
        (
            "duplicate certificate number",
            calibration("C-STD", "COARSE", "REF", "lab", "2026-03-01", "2027-03-01"),
            lab(),
            Some("4.3/calibration"),
        ),
        (
            "unknown equipment",
            calibration("C-X", "NOPE", "REF", "lab", "2026-03-01", "2027-03-01"),
            lab(),
            Some("4.3/calibration"),
        ),
        (
            "valid_until before the date",
            calibration("C-X", "COARSE", "REF", "lab", "2026-03-01", "2026-02-28"),
            lab(),
            Some("shape"),
        ),
        (
            "impossible date",
            calibration("C-X", "COARSE", "REF", "lab", "2026-02-29", "2027-03-01"),
            lab(),
            Some("shape"),
        ),
    ];
    let w = world();
    for (name, c, signer, want) in cases {
        let r = metrology::issue_calibration(&w, &signer, &c);
        assert_eq!(rule_of(&r), want, "{name}: {r:?}");
    }
    // Equal accuracy is not a higher level.
    let mut w = world();
    let r = metrology::register_equipment(
        &w,
        &who("lab", &["admin"]),
        &equipment("STD-B", pb::EquipmentKind::TestBench, "0.05", "lab"),
    );
    w.apply(r);
    let r = metrology::issue_calibration(
        &w,
        &lab(),
        &calibration("C-X", "STD-B", "STD", "lab", "2026-03-01", "2027-03-01"),
    );
    assert_eq!(rule_of(&r), Some("4.3/level"), "{r:?}");
}

#[test]
fn rule_4_2_verification_certificates() {
    type Edit = fn(&mut pb::IssueCertificate);
    let cases: &[(&str, Edit, Option<&str>)] = &[
        ("valid", |_| {}, None),
        (
            "an error exactly at the limit passes",
            |c| c.errors[1].error_centi_percent = -100,
            None,
        ),
        (
            "marked pass with an error over the limit",
            |c| c.errors[1].error_centi_percent = 101,
            Some("4.2/result"),
        ),
        (
            "low-current point uses the wider limit",
            |c| {
                c.errors.push(lp("0.05Ib PF1.0", 150));
            },
            None,
        ),
        (
            "marked fail with every error within limits",
            |c| c.passed = false,
            Some("4.2/result"),
        ),
        (
            "marked fail with an error over the limit",
            |c| {
                c.passed = false;
                c.errors[0].error_centi_percent = -130;
            },
            None,
        ),
        (
            "a load point the class does not define",
            |c| c.errors.push(lp("0.01Ib PF1.0", 0)),
            Some("shape"),
        ),
        (
            "before the authorisation's first day",
            |c| c.test_date = "2023-12-31".into(),
            Some("4.2/authorisation"),
        ),
        (
            "a class the authorisation does not cover",
            |c| c.asset_no = "M-B".into(),
            Some("4.2/authorisation"),
        ),
        (
            "a verifier without a personnel certificate",
            |c| c.verifier = "v9".into(),
            Some("4.2/personnel"),
        ),
        (
            "checker is the verifier",
            |c| c.checker = "v1".into(),
            Some("shape"),
        ),
        (
            "equipment whose calibration expired the day before",
            |c| c.test_date = "2027-01-01".into(),
            Some("4.2/equipment"),
        ),
        (
            "equipment on its calibration's last day",
            |c| c.test_date = "2026-12-31".into(),
            None,
        ),
        (
            "unregistered equipment",
            |c| c.equipment.push("NOPE".into()),
            Some("4.2/equipment"),
        ),
        (
            "another org's equipment (the national standard)",
            |c| c.equipment = vec!["NAT".into()],
            Some("4.2/equipment"),
        ),
        ("no equipment", |c| c.equipment.clear(), Some("shape")),
        (
            "equipment less than 3x better than class 0.2S",
            |c| {
                c.asset_no = "M02S".into();
                c.equipment = vec!["COARSE".into()];
                for e in &mut c.errors {
                    e.error_centi_percent = 0;
                }
            },
            Some("4.2/accuracy"),
        ),
        (
            "0.05 % equipment is 3x better than class 0.2S",
            |c| {
                c.asset_no = "M02S".into();
                for e in &mut c.errors {
                    e.error_centi_percent = 10;
                }
            },
            None,
        ),
        (
            "issued in another institution's name",
            |c| c.institution_org = "lab2".into(),
            Some("4.2/institution"),
        ),
        (
            "unknown instrument",
            |c| c.asset_no = "NOPE".into(),
            Some("4.2/instrument"),
        ),
        (
            "duplicate certificate number",
            |c| c.cert_no = "VC-EXISTING".into(),
            Some("4.2/certificate"),
        ),
        (
            "returned-meter certificate without a dispute",
            |c| c.kind = CK::ReturnedMeter as i32,
            Some("shape"),
        ),
        (
            "returned-meter certificate for an unknown dispute",
            |c| {
                c.kind = CK::ReturnedMeter as i32;
                c.dispute_id = "D-NOPE".into();
            },
            Some("4.2/dispute"),
        ),
        (
            "returned-meter certificate answering the meter's open dispute",
            |c| {
                c.kind = CK::ReturnedMeter as i32;
                c.dispute_id = "D-1".into();
            },
            None,
        ),
        (
            "dispute id on a periodic certificate",
            |c| c.dispute_id = "D-1".into(),
            Some("shape"),
        ),
        (
            "valid_until before test_date",
            |c| c.valid_until = "2026-06-09".into(),
            Some("shape"),
        ),
    ];
    let mut w = world();
    // An existing certificate (for the duplicate case), a class-B meter, an open dispute.
    w.records.insert(
        metrology::keys::certificate("VC-EXISTING"),
        (0, b"{}".to_vec()),
    );
    let details = metrology::check_instrument(&w, &instrument("M-B", "B")).unwrap();
    w.records.insert(
        metrology::keys::instrument("M-B"),
        (0, serde_json::to_vec(&details).unwrap()),
    );
    let r = metrology::open_dispute(
        &w,
        &who("grid", &["operator"]),
        &pb::OpenDispute {
            dispute_id: "D-1".into(),
            asset_no: "M1".into(),
            account: "resident-1".into(),
            reason: "bill too high".into(),
        },
    );
    w.apply(r);
    for (name, edit, want) in cases {
        let mut c = cert();
        edit(&mut c);
        let r = metrology::issue_certificate(&w, &lab(), &c);
        assert_eq!(rule_of(&r), *want, "{name}: {r:?}");
    }
    // The authorisation's and the personnel certificate's last days, and the days after.
    for (key, record) in [
        (
            metrology::keys::authorisation("lab", "A-1"),
            "authorisation",
        ),
        (
            metrology::keys::personnel_cert("lab", "v1", "P-1"),
            "personnel",
        ),
    ] {
        let mut w = w.clone();
        let (leaf, v) = w.records[&key].clone();
        let mut json: serde_json::Value = serde_json::from_slice(&v).unwrap();
        json["valid_until"] = "2026-06-10".into();
        w.records
            .insert(key, (leaf, serde_json::to_vec(&json).unwrap()));
        let mut c = cert();
        assert_eq!(rule_of(&metrology::issue_certificate(&w, &lab(), &c)), None);
        c.test_date = "2026-06-11".into();
        let r = metrology::issue_certificate(&w, &lab(), &c);
        assert_eq!(
            rule_of(&r),
            Some(if record == "authorisation" {
                "4.2/authorisation"
            } else {
                "4.2/personnel"
            })
        );
        assert!(r.unwrap_err().detail.contains("2026-06-11"));
    }

    // Answering the dispute closes it; a second answer is refused.
    let mut c = cert();
    c.kind = CK::ReturnedMeter as i32;
    c.dispute_id = "D-1".into();
    let r = metrology::issue_certificate(&w, &lab(), &c);
    w.apply(r);
    let (_, d) = metrology::get::<DisputeRec>(&w, &metrology::keys::dispute("D-1")).unwrap();
    assert_eq!(d.resolved_by.as_deref(), Some("VC-1"));
    c.cert_no = "VC-2".into();
    let r = metrology::issue_certificate(&w, &lab(), &c);
    assert_eq!(rule_of(&r), Some("4.2/dispute"));
    // The certificate is in the instrument's history and the institution's list.
    let hist = metrology::list::<CertificateRec>(&w, &metrology::keys::certificates_of("M1"));
    assert_eq!(hist.len(), 1);
    assert!(hist[0].1.covers("2026-06-10") && hist[0].1.covers("2032-06-09"));
    assert!(!hist[0].1.covers("2026-06-09") && !hist[0].1.covers("2032-06-10"));
    assert_eq!(
        metrology::list::<CertificateRec>(&w, &metrology::keys::issued_by("lab")).len(),
        1
    );
}

#[test]
fn factory_and_type_test_certificates_come_from_their_issuers() {
    let w = world();
    let factory = |c: &mut pb::IssueCertificate| {
        c.kind = CK::Factory as i32;
        c.institution_org = "sup".into();
        c.equipment.clear();
    };
    let mut c = cert();
    factory(&mut c);
    let r = metrology::issue_certificate(&w, &who("sup", &["supplier"]), &c);
    assert_eq!(rule_of(&r), None, "{r:?}");
    let mut c = cert();
    factory(&mut c);
    c.institution_org = "sup2".into();
    let r = metrology::issue_certificate(&w, &who("sup2", &["supplier"]), &c);
    assert_eq!(rule_of(&r), Some("4.2/factory"));

    let mut c = cert();
    c.kind = CK::TypeTest as i32;
    assert_eq!(rule_of(&metrology::issue_certificate(&w, &lab(), &c)), None);
    c.test_date = "2029-01-01".into();
    c.valid_until = "2030-01-01".into();
    assert_eq!(
        rule_of(&metrology::issue_certificate(&w, &lab(), &c)),
        Some("4.2/authorisation")
    );
}

#[test]
fn qualifications_equipment_plans_and_disputes_have_their_issuers() {
    let w = world();
    let auth = pb::GrantAuthorisation {
        number: "A-2".into(),
        institution_org: "lab2".into(),
        scope: vec![pb::AuthorisationScope {
            kind: IK::CurrentTransformer as i32,
            accuracy_classes: vec!["0.2S".into()],
        }],
        valid_from: "2026-01-01".into(),
        valid_until: "2026-12-31".into(),
    };
    assert_eq!(
        rule_of(&metrology::grant_authorisation(&w, &regulator(), &auth)),
        None
    );
    assert_eq!(
        rule_of(&metrology::grant_authorisation(&w, &lab(), &auth)),
        Some("qualification")
    );
    let mut bad = auth.clone();
    bad.scope[0].accuracy_classes = vec!["A".into()];
    assert_eq!(
        rule_of(&metrology::grant_authorisation(&w, &regulator(), &bad)),
        Some("shape"),
        "class A is a meter class, not a CT class"
    );
    let mut bad = auth.clone();
    bad.institution_org = "grid".into();
    assert_eq!(
        rule_of(&metrology::grant_authorisation(&w, &regulator(), &bad)),
        Some("qualification")
    );
    let mut dup = auth.clone();
    dup.institution_org = "lab".into();
    dup.number = "A-1".into();
    let e = metrology::grant_authorisation(&w, &regulator(), &dup).unwrap_err();
    assert_eq!(
        (e.rule, e.kind),
        ("qualification", RejectKind::AlreadyExists)
    );

    // Equipment: national standards by the regulator only; equipment by its owner.
    let nat = equipment("NAT-2", pb::EquipmentKind::NationalStandard, "0.001", "lab");
    assert_eq!(
        rule_of(&metrology::register_equipment(
            &w,
            &who("lab", &["admin"]),
            &nat
        )),
        Some("equipment")
    );
    let theirs = equipment("X", pb::EquipmentKind::TestBench, "0.05", "lab2");
    assert_eq!(
        rule_of(&metrology::register_equipment(&w, &lab(), &theirs)),
        Some("equipment")
    );
    let bad_acc = equipment("X", pb::EquipmentKind::TestBench, "0.05%", "lab");
    assert_eq!(
        rule_of(&metrology::register_equipment(&w, &lab(), &bad_acc)),
        Some("shape")
    );

    // Plans: an instrument's by its owner; an institution's by the regulator.
    let plan = |kind: pb::PlanSubject, subject: &str| pb::SchedulePlan {
        plan_id: format!("P-{subject}"),
        subject_kind: kind as i32,
        subject_id: subject.into(),
        task: "periodic verification".into(),
        due_date: "2027-01-31".into(),
    };
    let grid = who("grid", &["operator"]);
    for (signer, p, want) in [
        (&grid, plan(pb::PlanSubject::Instrument, "M1"), None),
        (
            &lab(),
            plan(pb::PlanSubject::Instrument, "M1"),
            Some("plan"),
        ),
        (
            &grid,
            plan(pb::PlanSubject::Instrument, "NOPE"),
            Some("plan"),
        ),
        (&lab(), plan(pb::PlanSubject::Equipment, "STD"), None),
        (
            &regulator(),
            plan(pb::PlanSubject::Institution, "lab"),
            None,
        ),
        (
            &lab(),
            plan(pb::PlanSubject::Institution, "lab"),
            Some("plan"),
        ),
        (
            &regulator(),
            plan(pb::PlanSubject::Institution, "grid"),
            Some("plan"),
        ),
        (
            &grid,
            plan(pb::PlanSubject::Unspecified, "M1"),
            Some("shape"),
        ),
    ] {
        let r = metrology::schedule_plan(&w, signer, &p);
        assert_eq!(rule_of(&r), want, "{p:?} by {signer:?}: {r:?}");
    }

    // Disputes: recorded by the meter's grid company.
    let d = pb::OpenDispute {
        dispute_id: "D-9".into(),
        asset_no: "M1".into(),
        account: "resident-1".into(),
        reason: String::new(),
    };
    assert_eq!(rule_of(&metrology::open_dispute(&w, &grid, &d)), None);
    assert_eq!(
        rule_of(&metrology::open_dispute(
            &w,
            &who("grid2", &["operator"]),
            &d
        )),
        Some("dispute")
    );
    let mut unknown = d.clone();
    unknown.asset_no = "NOPE".into();
    assert_eq!(
        rule_of(&metrology::open_dispute(&w, &grid, &unknown)),
        Some("dispute")
    );
    // A resident's dispute through the gateway: the owner's token key records it, another
    // org's token key may not, and a lab's verifier may not either.
    let token_key = |org: &str| who(org, &[gridledger_core::contract::TOKEN_ISSUER]);
    let mut by_resident = d.clone();
    by_resident.dispute_id = "D-10".into();
    assert_eq!(
        rule_of(&metrology::open_dispute(
            &w,
            &token_key(&grid.org_id),
            &by_resident
        )),
        None
    );
    assert_eq!(
        rule_of(&metrology::open_dispute(
            &w,
            &token_key("grid2"),
            &by_resident
        )),
        Some("dispute")
    );
    assert_eq!(
        rule_of(&metrology::open_dispute(&w, &lab(), &by_resident)),
        Some("dispute")
    );
}

#[test]
fn instruments_need_a_known_kind_a_class_of_that_kind_and_a_supplier() {
    let w = world();
    for (edit, want) in [
        (None, None),
        (Some(("class", "0.1")), Some("shape")),
        (Some(("class", "A")), None),
        (Some(("kind", "")), Some("shape")),
        (Some(("manufacturer", "grid")), Some("instrument")),
        (Some(("manufacturer", "nobody")), Some("instrument")),
    ] {
        let mut r = instrument("M9", "1");
        match edit {
            Some(("class", c)) => r.accuracy_class = c.into(),
            Some(("kind", _)) => r.kind = IK::Unspecified as i32,
            Some(("manufacturer", m)) => r.manufacturer_org = m.into(),
            _ => {}
        }
        let got = metrology::check_instrument(&w, &r).err().map(|e| e.rule);
        assert_eq!(got, want, "{edit:?}");
    }
}

#[test]
fn coverage_ends_where_a_later_verification_fails_and_names_the_gaps() {
    let c = |no: &str, test: &str, until: &str, passed: bool| CertificateRec {
        cert_no: no.into(),
        asset_no: "M1".into(),
        kind: CK::PeriodicVerification.as_str_name().into(),
        institution_org: "lab".into(),
        test_date: test.into(),
        valid_until: until.into(),
        passed,
        dispute_id: String::new(),
        equipment: vec![],
    };
    let pass = c("A", "2026-01-10", "2030-01-09", true);
    let fail = c("B", "2026-03-01", "2032-02-28", false);
    let again = c("C", "2026-03-05", "2032-03-04", true);
    let gaps =
        |certs: &[CertificateRec], from: &str, to: &str| metrology::uncovered(certs, from, to);
    let own = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        gaps(std::slice::from_ref(&pass), "2026-01-10", "2030-01-09"),
        own(&[])
    );
    assert_eq!(
        gaps(std::slice::from_ref(&pass), "2026-01-01", "2030-01-10"),
        own(&[("2026-01-01", "2026-01-09"), ("2030-01-10", "2030-01-10")])
    );
    // The failed verification on 2026-03-01 ends A's coverage; C resumes it.
    assert_eq!(
        gaps(
            &[pass.clone(), fail.clone(), again.clone()],
            "2026-02-01",
            "2026-03-31"
        ),
        own(&[("2026-03-01", "2026-03-04")])
    );
    assert_eq!(
        gaps(&[again, fail, pass], "2026-02-28", "2026-02-28"),
        own(&[]),
        "order of the input does not matter"
    );
    assert_eq!(
        gaps(&[], "2026-02-28", "2026-03-01"),
        own(&[("2026-02-28", "2026-03-01")])
    );
    // Day arithmetic across a leap day.
    assert_eq!(
        metrology::day_string(metrology::day_number("2028-02-28").unwrap() + 1),
        "2028-02-29"
    );
    assert_eq!(metrology::day_number("2026-02-29"), None);
}

#[test]
fn another_orgs_calibration_counts_only_once_the_owner_accepts_it() {
    let mut w = world();
    // lab2 owns a bench; the lab (with its reference) calibrates it.
    let r = metrology::register_equipment(
        &w,
        &who("lab2", &["admin"]),
        &equipment("L2-STD", pb::EquipmentKind::TestBench, "0.05", "lab2"),
    );
    w.apply(r);
    let r = metrology::issue_calibration(
        &w,
        &lab(),
        &calibration("C-L2", "L2-STD", "REF", "lab", "2026-01-05", "2026-12-31"),
    );
    w.apply(r);
    let e = chain(&w, "L2-STD", "2026-06-10").unwrap_err();
    assert!(e.contains("owner issued or accepted"), "{e}");
    let accept = pb::AcceptCalibration {
        cert_no: "C-L2".into(),
    };
    // Only the owner accepts; the calibrating lab cannot.
    assert_eq!(
        rule_of(&metrology::accept_calibration(&w, &lab(), &accept)),
        Some("4.3/acceptance")
    );
    let unknown = pb::AcceptCalibration {
        cert_no: "C-NOPE".into(),
    };
    let l2 = who("lab2", &["verifier"]);
    assert_eq!(
        rule_of(&metrology::accept_calibration(&w, &l2, &unknown)),
        Some("4.3/acceptance")
    );
    let r = metrology::accept_calibration(&w, &l2, &accept);
    w.apply(r);
    let links = chain(&w, "L2-STD", "2026-06-10").unwrap();
    assert_eq!(links.len(), 3);
    // Accepting twice, or accepting one's own calibration, is refused.
    let e = metrology::accept_calibration(&w, &l2, &accept).unwrap_err();
    assert_eq!(
        (e.rule, e.kind),
        ("4.3/acceptance", RejectKind::AlreadyExists)
    );
    let own = pb::AcceptCalibration {
        cert_no: "C-STD".into(),
    };
    let e = metrology::accept_calibration(&w, &who("lab", &["admin"]), &own).unwrap_err();
    assert_eq!(e.kind, RejectKind::AlreadyExists);
}
