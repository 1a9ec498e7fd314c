//! A local certificate authority: `atrium up` makes one under its data directory on first start
//! (and the tests one per process), with a certificate per service that serves as both its
//! server certificate (for `localhost`, `127.0.0.1`, `::1` and the service's name) and its
//! client certificate (naming the service as `spiffe://atrium/service/<name>`). Real deployments
//! bring their own CA and certificates (cert-manager) and point [`TlsConfig`] at the files.

use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::auth::ServiceId;
use crate::tls::TlsConfig;

const CA_NAME: &str = "Atrium local CA";

/// A CA and its service certificates in one directory.
pub struct LocalCa {
    dir: PathBuf,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "Atrium");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

impl LocalCa {
    /// Uses the CA in `dir`, creating it on first use, and makes sure every service has a
    /// certificate there (issuing the missing ones).
    pub fn ensure(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let ca = Self {
            dir: dir.to_owned(),
        };
        let key_path = dir.join("ca-key.pem");
        let cert_path = ca.ca_path();
        let key = if key_path.exists() && cert_path.exists() {
            let pem = fs::read_to_string(&key_path)
                .with_context(|| format!("read {}", key_path.display()))?;
            KeyPair::from_pem(&pem).with_context(|| format!("parse {}", key_path.display()))?
        } else {
            let key = KeyPair::generate().context("generate the CA key")?;
            let cert = ca_params()
                .self_signed(&key)
                .context("sign the CA certificate")?;
            write_private(&key_path, &key.serialize_pem())?;
            fs::write(&cert_path, cert.pem())
                .with_context(|| format!("write {}", cert_path.display()))?;
            key
        };
        let issuer = Issuer::new(ca_params(), key);
        for service in ServiceId::ALL {
            let tls = ca.tls_config(service);
            if let (Some(cert), Some(key)) = (&tls.cert, &tls.key)
                && !(cert.exists() && key.exists())
            {
                issue(&issuer, service, cert, key)?;
            }
        }
        Ok(ca)
    }

    /// The CA certificate (what clients such as the CLI trust).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The TLS settings of `service`: its certificate and key, and the CA.
    pub fn tls_config(&self, service: ServiceId) -> TlsConfig {
        TlsConfig::in_dir(&self.dir, service)
    }
}

fn issue(
    issuer: &Issuer<'_, KeyPair>,
    service: ServiceId,
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<()> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, service.name());
    dn.push(DnType::OrganizationName, "Atrium");
    params.distinguished_name = dn;
    let ia5 = |s: String| -> anyhow::Result<SanType> {
        Ok(SanType::DnsName(
            s.try_into().context("a DNS name for the certificate")?,
        ))
    };
    params.subject_alt_names = vec![
        ia5("localhost".into())?,
        ia5(service.name().into())?,
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        SanType::URI(
            service
                .uri()
                .try_into()
                .context("a URI for the certificate")?,
        ),
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().context("generate a service key")?;
    let cert = params
        .signed_by(&key, issuer)
        .with_context(|| format!("sign the {service} certificate"))?;
    write_private(key_path, &key.serialize_pem())?;
    fs::write(cert_path, cert.pem()).with_context(|| format!("write {}", cert_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_name_their_service_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = LocalCa::ensure(dir.path()).expect("create");
        let first = fs::read(ca.ca_path()).expect("ca");
        for service in ServiceId::ALL {
            let tls = ca.tls_config(service);
            let path = tls.cert.expect("cert path");
            let der = rustls::pki_types::CertificateDer::from_pem_file(&path).expect("pem");
            assert_eq!(crate::tls::service_of(&der), Some(service));
        }
        // A removed certificate is issued again by the same CA.
        fs::remove_file(dir.path().join("agent.pem")).expect("remove");
        let again = LocalCa::ensure(dir.path()).expect("reuse");
        assert_eq!(fs::read(again.ca_path()).expect("ca"), first);
        assert!(dir.path().join("agent.pem").exists());
    }

    use rustls::pki_types::pem::PemObject as _;
}
