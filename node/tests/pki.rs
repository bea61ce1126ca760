//! The consortium PKI issues certificates with the right usages and subjects, writes keys
//! owner-only, and never overwrites.

use std::os::unix::fs::PermissionsExt as _;

use gridledger_node::pki::{Ca, LeafKind, write_pair};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::*;

fn parse(pem: &str) -> (Vec<u8>,) {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    (p.contents,)
}

fn ekus(der: &[u8]) -> (bool, bool) {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    let e = c.extended_key_usage().unwrap().expect("EKU present").value;
    (e.server_auth, e.client_auth)
}

fn subject_field(der: &[u8], oid: &x509_parser::oid_registry::Oid) -> String {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    c.subject()
        .iter_by_oid(oid)
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn certificates_have_the_right_usages_subjects_and_issuer() {
    let ca = Ca::new("Metering Consortium").unwrap();
    let (ca_der,) = parse(&ca.pem.cert);
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    assert!(ca_cert.is_ca());

    let node = ca
        .issue(
            LeafKind::Node,
            "node-7",
            "grid-north",
            &["node7.example".into(), "10.0.0.7".into()],
            30,
        )
        .unwrap();
    let org = ca
        .issue(LeafKind::OrgSystem, "erp-connector", "sup-alpha", &[], 30)
        .unwrap();
    let public = ca
        .issue(
            LeafKind::PublicServer,
            "ledger.example",
            "grid-north",
            &["ledger.example".into()],
            30,
        )
        .unwrap();
    for (pem, want, org_name, ou) in [
        (&node, (true, true), "grid-north", "node"),
        (&org, (false, true), "sup-alpha", "system"),
        (&public, (true, false), "grid-north", "public"),
    ] {
        let (der,) = parse(&pem.cert);
        assert_eq!(ekus(&der), want);
        assert_eq!(
            subject_field(&der, &x509_parser::oid_registry::OID_X509_ORGANIZATION_NAME),
            org_name
        );
        assert_eq!(
            subject_field(
                &der,
                &x509_parser::oid_registry::OID_X509_ORGANIZATIONAL_UNIT
            ),
            ou
        );
        let (_, c) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(c.issuer(), ca_cert.subject());
        assert!(!c.is_ca());
        c.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
        let days =
            (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) / 86400;
        assert_eq!(days, 30, "30 days and the one-hour back-dating");
    }
    let (node_der,) = parse(&node.cert);
    let (_, c) = X509Certificate::from_der(&node_der).unwrap();
    let sans: Vec<String> = c
        .extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(s) => Some(
                s.general_names
                    .iter()
                    .map(|g| format!("{g}"))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(sans.len(), 2, "{sans:?}");
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    for good in [
        "localhost",
        "node-1.grid-north.example",
        "*.grid.example",
        "a",
    ] {
        assert!(gridledger_node::pki::valid_dns_name(good), "{good}");
    }
    for bad in [
        "",
        "not a name!",
        "-lead.example",
        "trail-.example",
        "a..b",
        "*.",
        "x".repeat(64).as_str(),
        "ünï.example",
    ] {
        assert!(!gridledger_node::pki::valid_dns_name(bad), "{bad}");
    }
    let ca = Ca::new("c").unwrap();
    assert!(
        ca.issue(LeafKind::Node, "n", "o", &[], 30)
            .unwrap_err()
            .contains("--san")
    );
    assert!(ca.issue(LeafKind::OrgSystem, "", "o", &[], 30).is_err());
    assert!(
        ca.issue(
            LeafKind::PublicServer,
            "x",
            "o",
            &["not a name!".into()],
            30
        )
        .unwrap_err()
        .contains("neither")
    );
}

#[test]
fn ca_round_trips_through_files_keys_are_owner_only_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Consortium").unwrap();
    ca.write(dir.path()).unwrap();
    let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        ca.write(dir.path())
            .unwrap_err()
            .contains("refusing to overwrite")
    );

    let loaded = Ca::load(dir.path()).unwrap();
    let leaf = loaded
        .issue(LeafKind::OrgSystem, "sys", "org", &[], 10)
        .unwrap();
    let (ca_der,) = parse(&ca.pem.cert);
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    let (leaf_der,) = parse(&leaf.cert);
    let (_, leaf_cert) = X509Certificate::from_der(&leaf_der).unwrap();
    leaf_cert
        .verify_signature(Some(ca_cert.public_key()))
        .expect("a loaded CA signs with the same key");

    write_pair(dir.path(), "sys", &leaf).unwrap();
    assert!(write_pair(dir.path(), "sys", &leaf).is_err());
    assert!(
        Ca::load(&dir.path().join("missing"))
            .unwrap_err()
            .contains("cannot read")
    );
}
