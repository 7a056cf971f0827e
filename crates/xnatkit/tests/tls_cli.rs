//! `xnatkit serve --tls-cert/--tls-key` with a throwaway CA made at test
//! time, and the CLI against it: trusted with `--ca-bundle` (listing and a
//! verified export over HTTPS), refused without it, and one-line errors for
//! unusable CA bundles and TLS files.

// Test code: failures should panic with their error.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use support::{TestServer, TlsFiles, cli, files_below, md5_hex, runtime};
use xnatkit_client::sample::seed_story_subjects;

const TYPE: &str = "Fl_Thorax INSP 3.0 Qr36";
const SUBJECT: &str = "125586";

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "xnatkit test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();

        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn files(&self) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        )
    }
}

/// Runs the command; asserts it failed with exactly one line on stderr,
/// an `error:` line containing every needle. Returns that line.
fn one_line_failure(cmd: &mut Command, needles: &[&str]) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "wanted one line on stderr, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(lines[0].contains(needle), "wanted {needle:?} in {stderr}");
    }
    lines[0].to_owned()
}

#[test]
fn https_server_trusted_with_ca_bundle_refused_without() {
    let pki = Pki::new();
    let (cert, key, ca) = pki.files();
    let server = TestServer::start_tls(&TlsFiles {
        cert: &cert,
        key: &key,
        ca: &ca,
    });
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(
        server
            .log()
            .contains(&format!("listening on {}", server.url)),
        "{}",
        server.log()
    );
    let rt = runtime();
    let (user, project) = rt.block_on(async {
        let user = server.create_user().await;
        let project = server
            .project_with(&user, &seed_story_subjects(&[SUBJECT, "339193"], 3, 32))
            .await;
        (user, project)
    });
    let home = tempfile::tempdir().unwrap();
    let base = |cmd: &mut Command| {
        cmd.args(["--server", &server.url, "-u", &user.0])
            .env("XNAT_PASS", &user.1);
    };

    // Trusted through --ca-bundle: listing works.
    let mut ls = cli(home.path());
    ls.args(["ls", &project, "--json", "--ca-bundle"]).arg(&ca);
    base(&mut ls);
    let out = ls.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let subjects: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(subjects.as_array().unwrap().len(), 2, "{subjects}");

    // A verified export over HTTPS (listing, parallel GETs, MD5 checks).
    let list = home.path().join("list.csv");
    std::fs::write(&list, format!("subject\n{SUBJECT}\n")).unwrap();
    let out_dir = home.path().join("out");
    let mut export = cli(home.path());
    export
        .args(["export", "-f"])
        .arg(&list)
        .arg("-o")
        .arg(&out_dir)
        .args(["-p", &project, "-t", TYPE, "--ca-bundle"])
        .arg(&ca);
    base(&mut export);
    let out = export.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scan =
        format!("/data/projects/{project}/subjects/{SUBJECT}/experiments/{SUBJECT}_CT1/scans/2");
    let remote = rt.block_on(server.files_of(&user, &scan));
    assert_eq!(remote.len(), 3);
    for file in &remote {
        let local = out_dir.join(SUBJECT).join(TYPE).join(&file.path);
        assert_eq!(Some(md5_hex(&local)), file.digest, "{}", local.display());
    }

    // Not trusted without the CA: one line naming the server, saying why
    // and what to pass.
    let mut untrusted = cli(home.path());
    untrusted.args(["ls", &project]);
    base(&mut untrusted);
    one_line_failure(
        &mut untrusted,
        &[&server.url, "certificate", "not trusted", "--ca-bundle"],
    );
    // Same for a login, which must not store anything.
    let mut login = cli(home.path());
    login.args(["login"]);
    base(&mut login);
    one_line_failure(&mut login, &[&server.url, "not trusted", "--ca-bundle"]);
    assert!(!home.path().join("config").join("tokens.json").exists());

    // Unusable CA bundles: one line naming the file.
    let missing = home.path().join("no-such-ca.pem");
    let mut cmd = cli(home.path());
    cmd.args(["ls", &project, "--ca-bundle"]).arg(&missing);
    base(&mut cmd);
    one_line_failure(&mut cmd, &[&missing.display().to_string(), "CA bundle"]);

    let not_pem = home.path().join("not-a-ca.txt");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let mut cmd = cli(home.path());
    cmd.args(["ls", &project, "--ca-bundle"]).arg(&not_pem);
    base(&mut cmd);
    one_line_failure(&mut cmd, &[&not_pem.display().to_string(), "PEM"]);

    // A bundle that is PEM but holds a key, not a certificate.
    let mut cmd = cli(home.path());
    cmd.args(["ls", &project, "--ca-bundle"]).arg(&key);
    base(&mut cmd);
    one_line_failure(&mut cmd, &[&key.display().to_string()]);

    assert!(
        !files_below(&out_dir)
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".part"))
    );
}

fn serve(data: &Path) -> Command {
    let mut cmd = Command::new(support::BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("XNATKIT_ADMIN_PASSWORD", "Not-used-1")
        .stdin(std::process::Stdio::null());
    cmd
}

#[test]
fn serve_rejects_incomplete_or_unusable_tls_files_in_one_line() {
    let pki = Pki::new();
    let (cert, key, ca) = pki.files();
    let data = tempfile::tempdir().unwrap();

    // One without the other.
    one_line_failure(
        serve(data.path()).arg("--tls-cert").arg(&cert),
        &["--tls-cert", "--tls-key"],
    );
    one_line_failure(
        serve(data.path()).arg("--tls-key").arg(&key),
        &["--tls-key", "--tls-cert"],
    );
    // A missing certificate file, a certificate given as key, and a key
    // that does not belong to the certificate: each names the file.
    let missing = data.path().join("missing.pem");
    one_line_failure(
        serve(data.path())
            .arg("--tls-cert")
            .arg(&missing)
            .arg("--tls-key")
            .arg(&key),
        &[&missing.display().to_string()],
    );
    one_line_failure(
        serve(data.path())
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&ca),
        &[&ca.display().to_string(), "private key"],
    );
    let other_key = data.path().join("other.key");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    one_line_failure(
        serve(data.path())
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&other_key),
        &[
            &other_key.display().to_string(),
            &cert.display().to_string(),
        ],
    );
    // Nothing was created before the TLS files were checked.
    assert!(!data.path().join("xnatkit.sqlite").exists());
    let help = Command::new(support::BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--tls-cert") && help.contains("--tls-key"),
        "{help}"
    );
}
