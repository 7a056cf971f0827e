//! HTTPS: loading the PEM certificate chain and key given to `xnatkit serve
//! --tls-cert/--tls-key`, and serving the router over rustls (`axum-server`,
//! aws-lc-rs provider — the one reqwest already brings, so the binary has a
//! single crypto provider and rustls picks it without being told).
//!
//! Both files are read and checked before the database is opened, so a
//! wrong path or a key that does not belong to the certificate stops the
//! start with one line naming the file.

use std::future::Future;
use std::path::{Path, PathBuf};

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServerError;

/// The PEM files for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, server certificate first.
    pub cert: PathBuf,
    /// Private key of the server certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn tls_error(path: &Path, reason: impl Into<String>) -> ServerError {
    ServerError::Tls {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|e| tls_error(path, format!("cannot read it: {e}")))
}

/// Reads and checks the certificate chain and key; the rustls server
/// configuration (HTTP/2 and HTTP/1.1 by ALPN) on success.
pub async fn load(files: &TlsFiles) -> Result<RustlsConfig, ServerError> {
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error(&files.cert, format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(tls_error(
            &files.cert,
            "contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        tls_error(
            &files.key,
            format!("contains no usable PEM private key ({e})"),
        )
    })?;
    RustlsConfig::from_pem(cert_pem, key_pem)
        .await
        .map_err(|e| {
            tls_error(
                &files.key,
                format!(
                    "cannot be used with the certificate {}: {e}",
                    files.cert.display()
                ),
            )
        })
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then
/// lets requests in flight finish (as [`crate::http_limits::serve_plain`]
/// does for plain HTTP).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    config: RustlsConfig,
    header_read_timeout: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener.into_std()?, config)?;
    let server = crate::http_limits::limit_heads(server, header_read_timeout)
        .handle(handle.clone())
        .accept_error_handler(|peer, err| {
            // Failed handshakes (a client that does not trust the
            // certificate, a port scanner) are the client's business.
            tracing::debug!(?peer, "TLS connection not accepted: {err}");
        });
    let stopper = tokio::spawn(async move {
        shutdown.await;
        handle.graceful_shutdown(None);
    });
    let served = server.serve(router.into_make_service()).await;
    stopper.abort();
    served
}
