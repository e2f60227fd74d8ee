//! `union sandbox start --tls`: the sandbox serves TLS with a certificate from a local CA, for
//! clients that insist on TLS (a union API key always means TLS) and to try TLS settings
//! (`caCertFilePath`) before a real cluster.
//!
//! The CA lives in `<data-dir>/tls/` (`ca.pem`, and `ca-key.pem` readable by the owner only) and
//! is kept across restarts, so a client told to trust it once keeps trusting it. The server
//! certificate is made anew at each start, for `localhost`, `127.0.0.1`, `::1` and the host the
//! sandbox listens on, and never written to disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The directory under the data directory.
pub const TLS_DIR: &str = "tls";
/// The CA certificate clients trust.
pub const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot write the sandbox's TLS files in `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the sandbox's TLS certificates: {0}")]
    Certificate(String),
}

impl union_diagnostics::Hint for TlsError {
    fn hints(&self) -> Vec<String> {
        match self {
            TlsError::Io { .. } => vec!["check the permissions of the data directory (--data-dir)".into()],
            TlsError::Certificate(_) => vec![
                "delete the data directory's tls/ folder to make a new CA (clients must then trust the new ca.pem)".into(),
            ],
        }
    }
}

/// The server's TLS configuration and where its CA certificate is.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_cert: PathBuf,
    /// This start's server certificate.
    pub server_cert: rustls::pki_types::CertificateDer<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca_cert", &self.ca_cert)
            .finish_non_exhaustive()
    }
}

fn cert_err(e: impl std::fmt::Display) -> TlsError {
    TlsError::Certificate(e.to_string())
}

fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "union sandbox local CA");
    dn.push(DnType::OrganizationName, "union sandbox");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(p)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Load (or make, the first time) the CA, and make a server certificate for `host`.
pub fn prepare(data_dir: &Path, host: &str) -> Result<Tls, TlsError> {
    let dir = data_dir.join(TLS_DIR);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
    }
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_key_path = dir.join(CA_KEY_FILE);
    let (ca_key, _ca_pem) = match (
        std::fs::read_to_string(&ca_key_path),
        std::fs::read_to_string(&ca_cert_path),
    ) {
        (Ok(key), Ok(pem)) => (KeyPair::from_pem(&key).map_err(cert_err)?, pem),
        _ => {
            let key = KeyPair::generate().map_err(cert_err)?;
            let cert = ca_params()?.self_signed(&key).map_err(cert_err)?;
            write_private(&ca_key_path, &key.serialize_pem()).map_err(io(&ca_key_path))?;
            std::fs::write(&ca_cert_path, cert.pem()).map_err(io(&ca_cert_path))?;
            (key, cert.pem())
        }
    };
    // Same name and key as the certificate on disk: what the server certificate names as its
    // issuer, and what clients trusting ca.pem check its signature with.
    let issuer = ca_params()?.self_signed(&ca_key).map_err(cert_err)?;

    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if !h.is_empty() && !names.iter().any(|n| n == h) && h != "0.0.0.0" && h != "::" {
        names.push(h.to_string());
    }
    let mut params = CertificateParams::new(names).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "union sandbox");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    params.not_after = (now + std::time::Duration::from_secs(365 * 86_400)).into();
    let server_key = KeyPair::generate().map_err(cert_err)?;
    let server = params
        .signed_by(&server_key, &issuer, &ca_key)
        .map_err(cert_err)?;

    let server_cert = server.der().clone();
    // The leaf alone: clients hold the CA (sending it too would add nothing to their check).
    let chain = vec![server_cert.clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).map_err(cert_err)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(cert_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(cert_err)?;
    // h2 for gRPC; http/1.1 for the signed upload URLs and the login pages (Python's requests
    // offers only http/1.1, and a server that refuses it ends the handshake).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        ca_cert: ca_cert_path,
        server_cert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_kept_and_the_server_certificate_chains_to_it() {
        let t = tempfile::tempdir().unwrap();
        let first = prepare(t.path(), "127.0.0.1").unwrap();
        let pem = std::fs::read_to_string(&first.ca_cert).unwrap();
        let second = prepare(t.path(), "127.0.0.1").unwrap();
        assert_eq!(std::fs::read_to_string(&second.ca_cert).unwrap(), pem);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(t.path().join("tls/ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // A client trusting only ca.pem accepts the second start's certificate, for each name.
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject as _;
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        use rustls::client::danger::ServerCertVerifier as _;
        for name in ["localhost", "127.0.0.1"] {
            let name = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(
                    &second.server_cert,
                    &[],
                    &name,
                    &[],
                    rustls::pki_types::UnixTime::now(),
                )
                .unwrap();
        }
        let other = rustls::pki_types::ServerName::try_from("example.com").unwrap();
        assert!(verifier
            .verify_server_cert(
                &second.server_cert,
                &[],
                &other,
                &[],
                rustls::pki_types::UnixTime::now()
            )
            .is_err());
    }
}
