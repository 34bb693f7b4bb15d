//! TLS on the chat port: the same port speaks TLS and plain text (a TLS ClientHello starts with 0x16;
//! see [`crate::transport::sniff`]).
//!
//! The certificate is the operator's (`--tls-cert`/`--tls-key`, PEM) or, when none is given, a
//! self-signed one generated on first start and kept in the data directory (`tls-cert.pem`,
//! `tls-key.pem`, the key readable by the server's user only). Clients trust a self-signed certificate on
//! first use and pin its fingerprint, which the server logs at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsSource {
    /// Plain text only: a TLS handshake is closed.
    #[default]
    Off,
    /// A self-signed certificate kept in this directory, made on first start.
    SelfSigned(PathBuf),
    /// The operator's certificate chain and key (PEM files).
    Files { cert: PathBuf, key: PathBuf },
}

/// The certificate file names in the data directory.
pub const CERT_FILE: &str = "tls-cert.pem";
pub const KEY_FILE: &str = "tls-key.pem";

/// A loaded certificate, ready to accept handshakes.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// The certificate's fingerprint (`SHA256:…`), for the operator to tell users.
    pub fingerprint: String,
    /// Where it was loaded from, and whether natter made it.
    pub cert_path: PathBuf,
    pub self_signed: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint)
            .field("cert_path", &self.cert_path)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCert { path: String },
    #[error("{path} holds no PEM private key")]
    NoKey { path: String },
    #[error("cannot make a self-signed TLS certificate: {0}")]
    Generate(String),
    #[error("the TLS certificate and key do not work together: {0}")]
    Config(#[from] rustls::Error),
}

/// Loads (or for [`TlsSource::SelfSigned`], makes once and then loads) the certificate. `None` for
/// [`TlsSource::Off`].
pub fn load(source: &TlsSource) -> Result<Option<Tls>, TlsError> {
    let (cert, key, self_signed) = match source {
        TlsSource::Off => return Ok(None),
        TlsSource::Files { cert, key } => (cert.clone(), key.clone(), false),
        TlsSource::SelfSigned(dir) => {
            let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
            if !cert.exists() || !key.exists() {
                generate_once(dir, &cert, &key)?;
            }
            (cert, key, true)
        }
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&cert)?)
        .filter_map(Result::ok)
        .collect();
    let first = chain.first().ok_or_else(|| TlsError::NoCert {
        path: cert.display().to_string(),
    })?;
    let fingerprint = natter_proto::auth::fingerprint(first);
    let private = PrivateKeyDer::from_pem_slice(&read(&key)?).map_err(|_| TlsError::NoKey {
        path: key.display().to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)?;
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
        cert_path: cert,
        self_signed,
    }))
}

/// The self-signed certificate and key kept in `dir` (PEM), made first if there are none.
pub fn self_signed_pem(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if !cert.exists() || !key.exists() {
        generate_once(dir, &cert, &key)?;
    }
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    Ok((read(&cert)?, read(&key)?))
}

/// Makes `cert` and `key` (PEM) the self-signed certificate kept in `dir` (a cluster's, shared by its
/// nodes). Returns whether that replaced another one.
pub fn keep_self_signed(dir: &Path, cert: &[u8], key: &[u8]) -> Result<bool, TlsError> {
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    let same = |path: &Path, bytes: &[u8]| std::fs::read(path).is_ok_and(|b| b == bytes);
    if same(&cert_path, cert) && same(&key_path, key) {
        return Ok(false);
    }
    let replaced = cert_path.exists();
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Read { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_private(&key_path, key).map_err(io(&key_path))?;
    std::fs::write(&cert_path, cert).map_err(io(&cert_path))?;
    Ok(replaced)
}

/// Makes the self-signed certificate unless another server starting from the same directory is making
/// it right now (then waits for that one's): two servers must never end up with one's key and the other's
/// certificate.
fn generate_once(dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Read { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let lock = dir.join("tls.lock");
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)
    {
        Ok(_) => {
            let made = generate(dir, cert, key);
            let _ = std::fs::remove_file(&lock);
            made
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while lock.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if lock.exists() {
                // Left behind by a server that died while making it: make it ourselves.
                let _ = std::fs::remove_file(&lock);
                return generate(dir, cert, key);
            }
            Ok(())
        }
        Err(e) => Err(io(&lock)(e)),
    }
}

/// Makes a self-signed certificate for this machine's names and writes it (the key with mode 0600).
fn generate(dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
        }
    }
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Read { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_private(key, made.signing_key.serialize_pem().as_bytes()).map_err(io(key))?;
    std::fs::write(cert, made.cert.pem()).map_err(io(cert))?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let source = TlsSource::SelfSigned(dir.path().to_owned());
        let first = load(&source).unwrap().unwrap();
        assert!(first.fingerprint.starts_with("SHA256:"));
        assert!(first.self_signed);
        let again = load(&source).unwrap().unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "kept, not made again");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(load(&TlsSource::Off).unwrap().is_none());
        let missing = TlsSource::Files {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
        };
        assert!(matches!(load(&missing), Err(TlsError::Read { .. })));
    }
}
