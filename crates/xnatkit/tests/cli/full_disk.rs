//! `xnatkit export` onto a full disk: a 2 MiB tmpfs mounted in a private
//! user+mount namespace (no real root needed) while the export needs about
//! 4 MiB. The run must stop with one line saying the disk is full and naming
//! the output path, and nothing under a final name may be incomplete. The
//! tmpfs lives only as long as the namespace, so the export and the listing
//! of what it left run in the same `unshare` invocation.
//!
//! Without `unshare` or user namespaces the test is skipped, or fails under
//! CI (`xnatkit_test_support::ci`).

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{TestServer, ct_subjects, hermetic, runtime};

const TYPE: &str = "Fl_Thorax INSP 3.0 Qr36";
const SUBJECTS: &[&str] = &["100001", "100002", "100003"];

/// Mounts a 2 MiB tmpfs on $1, runs the arguments after $2 with
/// `-o $1/out`, then prints `exit=CODE` and one `SIZE<TAB>MD5<TAB>PATH` line
/// per file left under $1, and copies the small bookkeeping files (manifest,
/// report; not the DICOM data) to $2 for a look at their content.
const SCRIPT: &str = r#"
dir="$1"; save="$2"; shift 2
mount -t tmpfs -o size=2m tmpfs "$dir" || { echo "mount-failed"; exit 97; }
"$@" -o "$dir/out" >/dev/null
echo "exit=$?"
cd "$dir" || exit 98
find . -type f | sort | while IFS= read -r f; do
  printf '%s\t%s\t%s\n' "$(wc -c < "$f")" "$(md5sum < "$f" | cut -d' ' -f1)" "$f"
done
find . -type f ! -name '*.dcm' ! -name '*.part' -exec cp --parents {} "$save" \;
"#;

/// Can this machine give us a private tmpfs? `None` when it can; else why not.
fn namespaces_unavailable() -> Option<String> {
    let probe = tempfile::tempdir().unwrap();
    match Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=1m tmpfs "$1" && touch "$1/x""#)
        .arg("sh")
        .arg(probe.path())
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Some(format!("cannot run unshare: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "unshare --user --map-root-user --mount failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

#[test]
fn export_onto_a_full_disk_stops_cleanly() {
    if let Some(why) = namespaces_unavailable() {
        xnatkit_test_support::ci::skip::<()>(&format!(
            "the full-disk test needs a private tmpfs: {why} (install util-linux, allow unprivileged user namespaces)"
        ));
        return;
    }
    let rt = runtime();
    let server = TestServer::start();
    let (user, project, digests, total) = rt.block_on(async {
        let user = server.create_user().await;
        // 10 slices of 256x256x2 bytes: ≈1.3 MiB per subject.
        let project = server
            .project_with(&user, &ct_subjects(SUBJECTS, TYPE, 10, 256))
            .await;
        let mut digests = HashSet::new();
        let mut total = 0;
        for subject in SUBJECTS {
            let scan = format!(
                "/data/projects/{project}/subjects/{subject}/experiments/{subject}_CT1/scans/2"
            );
            for f in server.files_of(&user, &scan).await {
                total += f.size.unwrap();
                digests.insert(f.digest.unwrap());
            }
        }
        (user, project, digests, total)
    });
    assert!(
        total > 3 << 20,
        "the export must need well over 2 MiB: {total}"
    );

    let home = tempfile::tempdir().unwrap();
    let list = home.path().join("list.csv");
    std::fs::write(&list, format!("subject\n{}\n", SUBJECTS.join("\n"))).unwrap();
    let mount_point = home.path().join("small-disk");
    std::fs::create_dir(&mount_point).unwrap();
    let saved = home.path().join("saved");
    std::fs::create_dir(&saved).unwrap();
    let out_dir = mount_point.join("out");

    let mut cmd = Command::new("unshare");
    hermetic(&mut cmd, home.path());
    let unshare = [
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        SCRIPT,
        "sh",
    ];
    cmd.args(unshare).arg(&mount_point).arg(&saved);
    cmd.arg(crate::support::BIN)
        .args(["export", "-f"])
        .arg(&list);
    // Four transfers in flight: at most four partial files, so the disk
    // fills after some files completed.
    cmd.args(["-p", &project, "-t", TYPE, "-j", "4"]);
    cmd.args(["--server", &server.url, "-u", &user.0])
        .env("XNAT_PASS", &user.1);
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let mut lines = stdout.lines();
    let exit = lines.next().unwrap_or_default();
    assert!(exit.starts_with("exit="), "{stdout}\n{stderr}");
    assert_ne!(exit, "exit=0", "the export cannot fit: {stdout}\n{stderr}");

    // One line says the disk is full and names the output folder; the
    // files in flight do not each repeat it.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("error:") || l.contains("no space left"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with("error: "), "{stderr}");
    assert!(
        errors[0].contains("is full")
            && errors[0].contains("no space left")
            && errors[0].contains(&format!("{} ", out_dir.display())),
        "{stderr}"
    );

    // What the run left: every file under a final name is complete (a DICOM
    // file matches a server digest, the manifest holds whole records);
    // only `.part` files may be partial.
    let mut dicom = 0;
    let mut parts = 0;
    for line in lines {
        let fields: Vec<&str> = line.splitn(3, '\t').collect();
        let [_size, md5, path] = fields.as_slice() else {
            panic!("unexpected listing line {line:?}\n{stdout}");
        };
        let path = Path::new(path);
        let name = path.file_name().unwrap().to_string_lossy();
        if name.ends_with(".part") {
            parts += 1;
        } else if name.ends_with(".dcm") {
            dicom += 1;
            assert!(
                digests.contains(*md5),
                "incomplete file under its final name: {line}\n{stdout}"
            );
        } else {
            check_bookkeeping(&saved.join(path), &digests, &stdout);
        }
    }
    assert!(
        dicom > 0,
        "some files fit before the disk filled:\n{stdout}"
    );
    assert!(dicom < SUBJECTS.len() * 10, "{stdout}");
    eprintln!(
        "full disk: {dicom} complete file(s), {parts} partial .part file(s); the CLI said:\n{stderr}"
    );
}

/// The manifest and the reports, if they exist under their final names,
/// are whole.
fn check_bookkeeping(file: &Path, digests: &HashSet<String>, listing: &str) {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(file).unwrap();
    match name.as_str() {
        ".xnatkit-manifest.jsonl" => {
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "torn manifest: {text:?}"
            );
            for line in text.lines() {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(
                    digests.contains(record["md5"].as_str().unwrap()),
                    "manifest vouches for unknown bytes: {line}"
                );
            }
        }
        "export-report.json" => {
            serde_json::from_str::<serde_json::Value>(&text).unwrap();
        }
        "export-report.csv" => {
            assert!(
                text.starts_with("subject,") && text.ends_with('\n'),
                "{text:?}"
            );
        }
        other => panic!("unexpected file {other:?} on the full disk:\n{listing}"),
    }
}
