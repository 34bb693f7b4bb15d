//! TLS from the client's side, with trust on first use.
//!
//! `natter join` speaks TLS by default. A server's certificate is trusted when it is the one pinned with
//! `--fingerprint`, or validates against the system's roots for the name dialled, or is the one this client
//! saw there before (the `known_servers` file in the data directory, like SSH's `known_hosts`). The first
//! time, a self-signed certificate is accepted and remembered, and the user is told its fingerprint; a
//! different one later is refused, loudly. Whatever decides, the handshake's signatures are verified, so a
//! pinned certificate proves the server holds its key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How this client connects.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Plain text only (`--no-tls`).
    pub off: bool,
    /// Trust exactly this certificate (`--fingerprint SHA256:…`).
    pub pin: Option<String>,
    /// The `known_servers` file (`None`: nothing is remembered, the first certificate is trusted each
    /// time).
    pub known_servers: Option<PathBuf>,
    /// The other addresses of the same server (the nodes of a cluster, given together): a certificate
    /// remembered for any of them is expected here too, so trust carries over when a client fails over.
    pub same_server: Vec<String>,
}

/// The file of certificates seen before, in the data directory.
pub const KNOWN_SERVERS: &str = "known_servers";

/// How a connection's certificate came to be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Plain text: `--no-tls`, or a server on this machine that does not speak TLS.
    Plain,
    Pinned,
    /// Valid for the name dialled, by the system's roots.
    Roots,
    /// The certificate seen here before.
    Known,
    /// Seen for the first time, now remembered: tell the user its fingerprint.
    FirstUse {
        fingerprint: String,
    },
}

/// Why a TLS connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not the certificate seen here before.
    Changed { old: String, new: String },
    /// Not the pinned one.
    NotPinned { pinned: String, got: String },
    /// The handshake failed otherwise (the text is rustls' or the system's).
    Failed(String),
}

/// What the verifier decided, read after the handshake.
type Verdict = Arc<Mutex<Option<Result<Trust, Refused>>>>;

#[derive(Debug)]
struct Verifier {
    pin: Option<String>,
    known: Option<String>,
    roots: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    verdict: Verdict,
}

impl Verifier {
    fn decide(&self, verdict: Result<Trust, Refused>) -> Result<ServerCertVerified, rustls::Error> {
        let ok = verdict.is_ok();
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
        match ok {
            true => Ok(ServerCertVerified::assertion()),
            false => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = natter_proto::auth::fingerprint(end_entity);
        if let Some(pinned) = &self.pin {
            return self.decide(match *pinned == got {
                true => Ok(Trust::Pinned),
                false => Err(Refused::NotPinned {
                    pinned: pinned.clone(),
                    got,
                }),
            });
        }
        if let Some(roots) = &self.roots {
            if roots
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .is_ok()
            {
                return self.decide(Ok(Trust::Roots));
            }
        }
        self.decide(match &self.known {
            Some(old) if *old == got => Ok(Trust::Known),
            Some(old) => Err(Refused::Changed {
                old: old.clone(),
                new: got,
            }),
            None => Ok(Trust::FirstUse { fingerprint: got }),
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's roots, read once (`None` if there are none).
fn roots() -> Option<Arc<WebPkiServerVerifier>> {
    static ROOTS: OnceLock<Option<Arc<WebPkiServerVerifier>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
                .build()
                .ok()
        })
        .clone()
}

/// The fingerprint remembered for `addr`, if any.
pub fn known(file: &Path, addr: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let (who, fingerprint) = line.split_once(' ')?;
        (who == addr).then(|| fingerprint.trim().to_owned())
    })
}

/// The fingerprint expected from `addr`: the one remembered for it, or for another address of the same
/// server.
fn expected(file: &Path, addr: &str, same_server: &[String]) -> Option<String> {
    std::iter::once(addr)
        .chain(same_server.iter().map(String::as_str))
        .find_map(|a| known(file, &crate::net::with_port(a)))
}

/// Remembers `fingerprint` for `addr` (appended; the file is created with mode 0600).
fn remember(file: &Path, addr: &str, fingerprint: &str) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    writeln!(options.open(file)?, "{addr} {fingerprint}")
}

/// The TLS handshake over `tcp` to `addr` (`host:port`, as dialled).
pub async fn handshake(
    tcp: TcpStream,
    addr: &str,
    options: &TlsOptions,
) -> Result<(TlsStream<TcpStream>, Trust), Refused> {
    let verdict = Verdict::default();
    let verifier = Verifier {
        pin: options.pin.clone(),
        known: options
            .known_servers
            .as_deref()
            .and_then(|f| expected(f, addr, &options.same_server)),
        roots: roots(),
        provider: provider(),
        verdict: verdict.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Refused::Failed(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let host = host_of(addr);
    let name = ServerName::try_from(host.to_owned()).map_err(|e| Refused::Failed(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = connector.connect(name, tcp).await;
    let decided = verdict.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (handshake, decided) {
        (Ok(stream), Some(Ok(trust))) => {
            if let (Trust::FirstUse { fingerprint }, Some(file)) = (&trust, &options.known_servers)
            {
                // Not remembering costs the user a second first-use notice, nothing more.
                let _ = remember(file, addr, fingerprint);
            }
            Ok((stream, trust))
        }
        (_, Some(Err(refused))) => Err(refused),
        (Err(e), _) => Err(Refused::Failed(e.to_string())),
        (Ok(_), None) => Err(Refused::Failed(natter_i18n::t!("tls-no-certificate"))),
    }
}

/// The host part of `host:port` (without an IPv6 address's brackets).
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Whether `addr` names this machine (a loopback address or `localhost`).
pub fn is_local(addr: &str) -> bool {
    let host = host_of(addr);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_servers_are_looked_up_by_address() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(KNOWN_SERVERS);
        assert_eq!(known(&file, "h:1"), None);
        remember(&file, "h:1", "SHA256:aaa").unwrap();
        remember(&file, "h:2", "SHA256:bbb").unwrap();
        assert_eq!(known(&file, "h:1").as_deref(), Some("SHA256:aaa"));
        assert_eq!(known(&file, "h:2").as_deref(), Some("SHA256:bbb"));
        // A cluster's nodes given together are one server: what was seen on one is expected of all.
        let nodes = ["h:1".to_owned(), "h:2".to_owned()];
        assert_eq!(
            expected(&file, "h:3", &nodes).as_deref(),
            Some("SHA256:aaa")
        );
        assert_eq!(
            expected(&file, "h:2", &nodes).as_deref(),
            Some("SHA256:bbb")
        );
        assert_eq!(expected(&file, "h:3", &[]), None);
        assert_eq!(host_of("[::1]:5500"), "::1");
        assert_eq!(host_of("example.org:5500"), "example.org");
        assert!(is_local("127.0.0.1:5500") && is_local("[::1]:1") && is_local("localhost:5"));
        assert!(!is_local("192.168.1.20:5500"));
    }
}
