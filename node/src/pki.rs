//! Development PKI (rcgen): a CA, a node (server) certificate and a client certificate.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    /// Certificate.
    pub cert: String,
    /// Private key (PKCS#8).
    pub key: String,
}

/// A CA that can issue certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate and key.
    pub pem: Pem,
}

fn rc(e: rcgen::Error) -> String {
    format!("certificate generation failed: {e}")
}

impl Ca {
    /// A new self-signed CA.
    ///
    /// # Errors
    /// rcgen failures, as text.
    pub fn new(org: &str) -> Result<Self, String> {
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, format!("{org} development CA"));
        p.distinguished_name.push(DnType::OrganizationName, org);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
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

    /// A server certificate for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    /// rcgen failures, as text.
    pub fn server(&self, cn: &str, org: &str, names: &[String]) -> Result<Pem, String> {
        self.leaf(cn, org, names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate naming an organisation system.
    ///
    /// # Errors
    /// rcgen failures, as text.
    pub fn client(&self, cn: &str, org: &str) -> Result<Pem, String> {
        self.leaf(cn, org, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(
        &self,
        cn: &str,
        org: &str,
        names: &[String],
        eku: ExtendedKeyUsagePurpose,
    ) -> Result<Pem, String> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name.push(DnType::OrganizationName, org);
        p.extended_key_usages = vec![eku];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        for n in names {
            let san = match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(n.clone().try_into().map_err(rc)?),
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
