//! Consortium PKI (rcgen): a CA, and the certificates members need.
//!
//! | kind | extended key usage | subject | used for |
//! |---|---|---|---|
//! | CA | (CA: keyCertSign, cRLSign) | CN=`<org> CA`, O=`<org>` | signs everything below |
//! | node | serverAuth + clientAuth | CN=`<node id>`, O=`<org>`, OU=`node` | API port, peer port (both directions of node-to-node mTLS) |
//! | org system | clientAuth | CN=`<system>`, O=`<org>`, OU=`system` | ERP connectors, settlement systems on the API port |
//! | user-facing server | serverAuth | CN=`<first name>`, O=`<org>`, OU=`public` | the public listener end users reach |
//!
//! Private keys are PKCS#8 PEM, written with mode 0600; certificates are PEM.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Pem {
    /// Certificate.
    pub cert: String,
    /// Private key (PKCS#8).
    pub key: String,
}

// Debug output ends up in logs and panic messages: never include the private key.
impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem")
            .field("cert", &self.cert)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Whether `name` is a DNS name a certificate may carry: dot-separated labels of 1-63
/// letters, digits and hyphens (not at either end), at most 253 characters, optionally
/// starting with a `*.` wildcard label.
pub fn valid_dns_name(name: &str) -> bool {
    let rest = name.strip_prefix("*.").unwrap_or(name);
    !rest.is_empty()
        && name.len() <= 253
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Default validity of leaf certificates, days.
pub const LEAF_DAYS: u32 = 397;
/// Default validity of a CA, days.
pub const CA_DAYS: u32 = 3650;

/// A CA that can issue certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate and key.
    pub pem: Pem,
}

// Never print the key: Debug shows only that this is a CA.
impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

fn rc(e: rcgen::Error) -> String {
    format!("certificate generation failed: {e}")
}

fn validity(p: &mut CertificateParams, days: u32) {
    // Back-date by an hour so clocks slightly behind the issuer still accept it.
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(i64::from(days));
}

/// What kind of leaf certificate to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKind {
    /// A node: server and client authentication (API and peer ports).
    Node,
    /// An organisation's system: client authentication only.
    OrgSystem,
    /// A user-facing server (public listener): server authentication only.
    PublicServer,
}

impl Ca {
    /// A new self-signed CA for an organisation (the consortium's root, in practice).
    ///
    /// # Errors
    /// rcgen failures, as text.
    pub fn new(org: &str) -> Result<Self, String> {
        Self::with_days(org, CA_DAYS)
    }

    /// A new CA valid for `days`.
    ///
    /// # Errors
    /// rcgen failures, as text.
    pub fn with_days(org: &str, days: u32) -> Result<Self, String> {
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, format!("{org} CA"));
        p.distinguished_name.push(DnType::OrganizationName, org);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut p, days);
        let key = KeyPair::generate().map_err(rc)?;
        let cert = p.self_signed(&key).map_err(rc)?;
        let pem = Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        Ok(Self {
            issuer: Issuer::new(p, key),
            pem,
        })
    }

    /// Loads a CA written by [`Ca::write`] (`ca.pem`, `ca-key.pem` in `dir`).
    ///
    /// # Errors
    /// Unreadable or unparsable files, named.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .map_err(|e| format!("cannot read {}: {e}", dir.join(f).display()))
        };
        let (cert, key) = (read("ca.pem")?, read("ca-key.pem")?);
        let kp = KeyPair::from_pem(&key).map_err(|e| {
            format!(
                "{}: not a private key: {e}",
                dir.join("ca-key.pem").display()
            )
        })?;
        let issuer = Issuer::from_ca_cert_pem(&cert, kp).map_err(|e| {
            format!(
                "{}: not a CA certificate: {e}",
                dir.join("ca.pem").display()
            )
        })?;
        Ok(Self {
            issuer,
            pem: Pem { cert, key },
        })
    }

    /// Writes `ca.pem` and `ca-key.pem` (0600) into `dir`, refusing to overwrite.
    ///
    /// # Errors
    /// I/O failures or existing files.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        write_pair(dir, "ca", &self.pem)
    }

    /// A server certificate for `names` (DNS names or IP addresses), as a node.
    ///
    /// # Errors
    /// rcgen failures, as text.
    pub fn server(&self, cn: &str, org: &str, names: &[String]) -> Result<Pem, String> {
        self.issue(LeafKind::Node, cn, org, names, LEAF_DAYS)
    }

    /// A client certificate naming an organisation system.
    ///
    /// # Errors
    /// rcgen failures, as text.
    pub fn client(&self, cn: &str, org: &str) -> Result<Pem, String> {
        self.issue(LeafKind::OrgSystem, cn, org, &[], LEAF_DAYS)
    }

    /// Issues a leaf certificate of a kind. `names` become subject alternative names
    /// (IP addresses or DNS names); server kinds need at least one.
    ///
    /// # Errors
    /// Bad names or rcgen failures, as text.
    pub fn issue(
        &self,
        kind: LeafKind,
        cn: &str,
        org: &str,
        names: &[String],
        days: u32,
    ) -> Result<Pem, String> {
        if cn.is_empty() || org.is_empty() {
            return Err("a certificate needs a common name and an organisation".into());
        }
        if kind != LeafKind::OrgSystem && names.is_empty() {
            return Err(
                "a server certificate needs at least one --san (DNS name or IP address)".into(),
            );
        }
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name.push(DnType::OrganizationName, org);
        let (ou, ekus) = match kind {
            LeafKind::Node => (
                "node",
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
            ),
            LeafKind::OrgSystem => ("system", vec![ExtendedKeyUsagePurpose::ClientAuth]),
            LeafKind::PublicServer => ("public", vec![ExtendedKeyUsagePurpose::ServerAuth]),
        };
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, ou);
        p.extended_key_usages = ekus;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        validity(&mut p, days);
        for n in names {
            let san = match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) if valid_dns_name(n) => SanType::DnsName(n.clone().try_into().map_err(rc)?),
                Err(_) => return Err(format!("{n:?} is neither an IP address nor a DNS name")),
            };
            p.subject_alt_names.push(san);
        }
        let key = KeyPair::generate().map_err(rc)?;
        let cert = p.signed_by(&key, &self.issuer).map_err(rc)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// Writes `<name>.pem` and `<name>-key.pem` (mode 0600) into `dir`, refusing to overwrite
/// either (a lost key cannot be recovered, an overwritten one silently breaks a member).
///
/// # Errors
/// I/O failures, or a file that already exists, named.
pub fn write_pair(dir: &Path, name: &str, pem: &Pem) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    for p in [&cert, &key] {
        if p.exists() {
            return Err(format!(
                "{} already exists; refusing to overwrite it",
                p.display()
            ));
        }
    }
    crate::config::write_secret(&key, &pem.key)
        .map_err(|e| format!("cannot write {}: {e}", key.display()))?;
    std::fs::write(&cert, &pem.cert)
        .map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    Ok(())
}
