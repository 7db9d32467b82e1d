//! Development certificates for the gateway's HTTPS door: a throwaway CA made
//! at start, a server certificate for this machine (`localhost`, `127.0.0.1`,
//! `::1`) and client certificates, all signed by it. `liaison up` and the
//! tests use them; production brings its own certificates (`[https]` in the
//! configuration). The CA's private key is never written to disk: a new CA is
//! made for every session.

use anyhow::{Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The names a development server certificate is valid for.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A development certificate authority, held in memory.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl DevCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)
            .context("making the development CA")?;
        Ok(Self { issuer })
    }

    /// The CA certificate, for clients to trust (or the door to verify clients with).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Result<Issued> {
        self.issue(
            names,
            "Liaison gateway (development)",
            &[ExtendedKeyUsagePurpose::ServerAuth],
        )
    }

    /// A client certificate for `name`.
    pub fn client(&self, name: &str) -> Result<Issued> {
        self.issue(&[], name, &[ExtendedKeyUsagePurpose::ClientAuth])
    }

    /// A NATS node's certificate for `names`: a server to its clients and
    /// leaf nodes, and a client to the other nodes on its routes (which
    /// verify it).
    pub fn node(&self, names: &[&str]) -> Result<Issued> {
        self.issue(
            names,
            "Liaison NATS node (development)",
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    fn issue(
        &self,
        names: &[&str],
        common_name: &str,
        usage: &[ExtendedKeyUsagePurpose],
    ) -> Result<Issued> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usage.to_vec();
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("issuing a certificate for {common_name}"))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Where [`write_server_files`] put the files.
#[derive(Debug, Clone)]
pub struct DevTlsFiles {
    /// The CA certificate clients trust (`curl --cacert`).
    pub ca: PathBuf,
    /// The server certificate (`https.cert`).
    pub cert: PathBuf,
    /// The server's private key (`https.key`, mode 0600).
    pub key: PathBuf,
}

/// Makes a new CA and a server certificate for this machine and writes them
/// into `dir` (created, mode 0700): `ca.pem`, `server.pem`, `server-key.pem`.
pub fn write_server_files(dir: &Path) -> Result<DevTlsFiles> {
    let ca = DevCa::new("Liaison development CA")?;
    let server = ca.server(&SERVER_NAMES)?;
    create_private_dir(dir)?;
    let files = DevTlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    write(&files.ca, &ca.cert_pem(), 0o644)?;
    write(&files.cert, &server.cert_pem, 0o644)?;
    write(&files.key, &server.key_pem, 0o600)?;
    Ok(files)
}

/// Creates `dir` (and its parents) with mode 0700 for the last component.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Writes `text` to `path` with `mode`, replacing what was there.
pub fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let context = || format!("writing {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(context)?;
    // An existing file keeps its old mode through `open`: set it.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(context)?;
    file.write_all(text.as_bytes()).with_context(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn server_files_are_written_with_the_key_private() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let files = write_server_files(&dir.path().join("tls"))?;
        let mode =
            |p: &Path| -> Result<u32> { Ok(std::fs::metadata(p)?.permissions().mode() & 0o777) };
        assert_eq!(mode(&files.key)?, 0o600);
        assert_eq!(mode(&dir.path().join("tls"))?, 0o700);
        assert!(std::fs::read_to_string(&files.cert)?.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(std::fs::read_to_string(&files.key)?.contains("PRIVATE KEY"));
        Ok(())
    }
}
