//! The C-STORE receiver against DCMTK's real `echoscu`, `storescu` and `findscu`.

// Test helpers panic on setup failures like the tests themselves do.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use xnatkit_dicom::scp::{InstanceSink, ReceivedInstance, ScpConfig, run_scp};
use xnatkit_dicom::testdata::{SyntheticEncoding, SyntheticInstance, new_uid, write_series};

const AE: &str = "XNATKIT";

#[derive(Default)]
struct KeepingSink {
    received: Mutex<Vec<ReceivedInstance>>,
    refuse: AtomicBool,
}

impl InstanceSink for KeepingSink {
    async fn instance_received(&self, received: ReceivedInstance) -> Result<(), String> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err("archive is read-only".into());
        }
        self.received.lock().unwrap().push(received);
        Ok(())
    }
}

struct Receiver {
    port: u16,
    spool: tempfile::TempDir,
    sink: Arc<KeepingSink>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), xnatkit_dicom::Error>>,
}

impl Receiver {
    async fn start(edit: impl FnOnce(&mut ScpConfig)) -> Self {
        let spool = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = ScpConfig::new(AE, spool.path().join("incoming"));
        edit(&mut config);
        let sink = Arc::new(KeepingSink::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run_scp(listener, config, Arc::clone(&sink), async {
            let _ = stopped.await;
        }));
        Receiver {
            port,
            spool,
            sink,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("receiver stops")
            .unwrap()
            .unwrap();
    }

    fn received(&self) -> Vec<ReceivedInstance> {
        self.sink.received.lock().unwrap().clone()
    }

    fn spooled_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.spool.path().join("incoming"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }
}

async fn run_tool(tool: &Path, args: &[String]) -> (bool, String) {
    let output = tokio::process::Command::new(tool)
        .args(args)
        .output()
        .await
        .expect("run dcmtk tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn args(list: &[&str], port: u16, files: &[PathBuf]) -> Vec<String> {
    let mut all: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    all.extend([
        "-aet".into(),
        "SENDER".into(),
        "127.0.0.1".into(),
        port.to_string(),
    ]);
    all.extend(files.iter().map(|f| f.display().to_string()));
    all
}

/// The data set of a DICOM file: everything after the file meta group.
fn data_set_bytes(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[128..132], b"DICM", "{}", path.display());
    let group_length = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    bytes[144 + group_length..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_and_called_title_check() {
    let Some(echoscu) = common::dcmtk_tool("echoscu") else {
        return;
    };
    let receiver = Receiver::start(|_| {}).await;
    let (ok, text) = run_tool(&echoscu, &args(&["-aec", AE], receiver.port, &[])).await;
    assert!(ok, "{text}");
    // Several echoes in one association: echoscu fails on a response that does
    // not answer the message ID it sent.
    let (ok, text) = run_tool(
        &echoscu,
        &args(&["-aec", AE, "--repeat", "3"], receiver.port, &[]),
    )
    .await;
    assert!(ok, "{text}");
    let (ok, text) = run_tool(
        &echoscu,
        &args(&["-aec", "SOMEONE_ELSE"], receiver.port, &[]),
    )
    .await;
    assert!(!ok, "wrong called AE title must be rejected: {text}");
    receiver.stop().await;

    let any_title = Receiver::start(|c| c.require_called_ae_title = false).await;
    let (ok, text) = run_tool(
        &echoscu,
        &args(&["-aec", "SOMEONE_ELSE"], any_title.port, &[]),
    )
    .await;
    assert!(ok, "{text}");
    any_title.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_series_lands_unchanged() {
    let Some(storescu) = common::dcmtk_tool("storescu") else {
        return;
    };
    let Some(dcmdump) = common::dcmtk_tool("dcmdump") else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    let study = new_uid();
    let mut files = write_series(
        source.path(),
        &SyntheticInstance {
            series_number: Some(4),
            ..SyntheticInstance::new(&study, &new_uid())
        },
        6,
    )
    .unwrap();
    files.extend(
        write_series(
            source.path(),
            &SyntheticInstance {
                series_number: Some(5),
                encoding: SyntheticEncoding::ImplicitLittle,
                ..SyntheticInstance::new(&study, &new_uid())
            },
            3,
        )
        .unwrap(),
    );

    let receiver = Receiver::start(|_| {}).await;
    let (ok, text) = run_tool(
        &storescu,
        &args(&["-aec", AE, "-xe"], receiver.port, &files),
    )
    .await;
    assert!(ok, "{text}");
    let received = receiver.received();
    assert_eq!(received.len(), files.len());
    for instance in &received {
        assert_eq!(instance.calling_ae, "SENDER");
        assert_eq!(instance.called_ae, AE);
        assert_eq!(instance.header.study_instance_uid, study);
        assert!(instance.path.starts_with(receiver.spool.path()));
        let original = files
            .iter()
            .find(|f| {
                xnatkit_dicom::read_header(f).unwrap().sop_instance_uid
                    == instance.header.sop_instance_uid
            })
            .expect("received instance was sent");
        // Same transfer syntax as sent: the data set must be byte for byte the same.
        if xnatkit_dicom::read_header(original)
            .unwrap()
            .transfer_syntax
            == instance.header.transfer_syntax
        {
            assert_eq!(data_set_bytes(original), data_set_bytes(&instance.path));
        }
        let dumped = common::dcmdump_values(&dcmdump, &instance.path);
        assert_eq!(dumped["0002,0010"], instance.header.transfer_syntax);
        assert_eq!(dumped["0002,0003"], instance.header.sop_instance_uid);
        assert_eq!(dumped["0002,0016"], "SENDER");
    }
    // Nothing half-written is left behind.
    assert_eq!(receiver.spooled_files().len(), files.len());
    assert!(
        receiver
            .spooled_files()
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "dcm"))
    );
    receiver.stop().await;
}

/// pydicom's real files in big-endian, implicit, RLE, JPEG, JPEG-LS, JPEG 2000 and
/// deflated transfer syntaxes are stored exactly as they arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_and_legacy_syntaxes_are_stored_unchanged() {
    let Some(storescu) = common::dcmtk_tool("storescu") else {
        return;
    };
    let Some(storescp) = common::dcmtk_tool("storescp") else {
        return;
    };
    let Some(files) = common::pydicom_test_files() else {
        return;
    };
    let receiver = Receiver::start(|_| {}).await;
    let cases = [
        ("-xb", "MR_small_bigendian.dcm", "1.2.840.10008.1.2.2"),
        ("-xi", "MR_small_implicit.dcm", "1.2.840.10008.1.2"),
        ("-xr", "MR_small_RLE.dcm", "1.2.840.10008.1.2.5"),
        ("-xx", "JPGExtended.dcm", "1.2.840.10008.1.2.4.51"),
        (
            "-xt",
            "MR_small_jpeg_ls_lossless.dcm",
            "1.2.840.10008.1.2.4.80",
        ),
        ("-xv", "MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.90"),
        ("-xd", "image_dfl.dcm", "1.2.840.10008.1.2.1.99"),
    ];
    for (option, name, syntax) in cases {
        let path = files.join(name);
        let before = receiver.received().len();
        let (ok, text) = run_tool(
            &storescu,
            &args(
                &["-aec", AE, option],
                receiver.port,
                std::slice::from_ref(&path),
            ),
        )
        .await;
        assert!(ok, "{name}: {text}");
        let received = receiver.received();
        assert_eq!(received.len(), before + 1, "{name}: {text}");
        let stored = &received[before];
        assert_eq!(stored.header.transfer_syntax, syntax, "{name}");
        // storescu re-encodes what it sends, so compare with what DCMTK's own
        // receiver keeps in bit-preserving mode.
        let (_keep, reference) = reference_copy(&storescp, &storescu, option, &path).await;
        assert_eq!(
            data_set_bytes(&reference),
            data_set_bytes(&stored.path),
            "{name}"
        );
        assert_eq!(stored.header, {
            let mut original = xnatkit_dicom::read_header(&path).unwrap();
            original.transfer_syntax = syntax.to_owned();
            original
        });
    }
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_answered_with_failure_statuses() {
    let Some(storescu) = common::dcmtk_tool("storescu") else {
        return;
    };
    let Some(findscu) = common::dcmtk_tool("findscu") else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    let files = write_series(
        source.path(),
        &SyntheticInstance::new(&new_uid(), &new_uid()),
        2,
    )
    .unwrap();

    let receiver = Receiver::start(|_| {}).await;
    receiver.sink.refuse.store(true, Ordering::SeqCst);
    let (_, text) = run_tool(
        &storescu,
        &args(&["-aec", AE, "-nh", "-v"], receiver.port, &files),
    )
    .await;
    assert!(
        text.to_lowercase().contains("0xa700") || text.contains("OutOfResources"),
        "{text}"
    );
    assert!(receiver.received().is_empty());
    assert!(
        receiver.spooled_files().is_empty(),
        "refused files must not stay in the spool"
    );

    // A query/retrieve class is not a storage class: its presentation context is refused.
    let (ok, text) = run_tool(
        &findscu,
        &args(
            &["-aec", AE, "-S", "-k", "QueryRetrieveLevel=STUDY"],
            receiver.port,
            &[],
        ),
    )
    .await;
    assert!(!ok, "C-FIND must not be accepted: {text}");
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn associations_are_bounded_and_shutdown_is_graceful() {
    let Some(echoscu) = common::dcmtk_tool("echoscu") else {
        return;
    };
    let receiver = Receiver::start(|c| {
        c.max_associations = 1;
        c.association_wait = Duration::from_millis(300);
        c.shutdown_grace = Duration::from_millis(500);
    })
    .await;

    // Hold the only slot with an association that stays open.
    let holder = dicom_ul::ClientAssociationOptions::new()
        .with_abstract_syntax("1.2.840.10008.1.1")
        .calling_ae_title("HOLDER")
        .called_ae_title(AE)
        .establish_async(format!("127.0.0.1:{}", receiver.port).as_str())
        .await
        .expect("first association");

    let (ok, text) = run_tool(&echoscu, &args(&["-aec", AE], receiver.port, &[])).await;
    assert!(
        !ok,
        "a second association must be rejected while the first runs: {text}"
    );
    assert!(text.to_lowercase().contains("reject"), "{text}");

    holder.release().await.expect("release");
    let (ok, text) = run_tool(&echoscu, &args(&["-aec", AE], receiver.port, &[])).await;
    assert!(ok, "{text}");

    // An idle association does not keep the receiver from stopping.
    let _idle = dicom_ul::ClientAssociationOptions::new()
        .with_abstract_syntax("1.2.840.10008.1.1")
        .called_ae_title(AE)
        .establish_async(format!("127.0.0.1:{}", receiver.port).as_str())
        .await
        .expect("idle association");
    let started = std::time::Instant::now();
    receiver.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Sends `file` with `storescu <option>` to DCMTK's `storescp +B +xa` (which keeps
/// data sets bit for bit) and returns the file it stored.
async fn reference_copy(
    storescp: &Path,
    storescu: &Path,
    option: &str,
    file: &Path,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_path_buf();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut server = tokio::process::Command::new(storescp)
        .args(["+B", "+xa", "-od"])
        .arg(&out)
        .arg(port.to_string())
        .kill_on_drop(true)
        .spawn()
        .expect("start storescp");
    let mut sent = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (ok, _) = run_tool(storescu, &args(&[option], port, &[file.to_path_buf()])).await;
        if ok {
            sent = true;
            break;
        }
    }
    let _ = server.kill().await;
    assert!(sent, "storescp never accepted {}", file.display());
    let stored: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let path = stored.into_iter().next().unwrap();
    (dir, path)
}

/// pynetdicom (another independent DICOM stack) sending pydicom's files in their
/// own transfer syntaxes: implicit, big endian, RLE, JPEG 2000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynetdicom_sends_in_each_syntax() {
    let Some(python) = common::peers_python_with_pynetdicom() else {
        return;
    };
    let Some(files) = common::pydicom_test_files() else {
        return;
    };
    let receiver = Receiver::start(|_| {}).await;
    let names = [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
    ];
    let script = r#"
import sys
from pydicom import dcmread
from pynetdicom import AE
port, files = int(sys.argv[1]), sys.argv[2:]
datasets = [dcmread(f) for f in files]
ae = AE(ae_title="PYNET")
for ds in datasets:
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
assoc = ae.associate("127.0.0.1", port, ae_title="XNATKIT")
if not assoc.is_established:
    sys.exit("association refused")
for ds in datasets:
    status = assoc.send_c_store(ds)
    print(ds.file_meta.TransferSyntaxUID, "0x%04x" % status.Status)
assoc.release()
"#;
    let mut command_args = vec![
        "-c".to_owned(),
        script.to_owned(),
        receiver.port.to_string(),
    ];
    command_args.extend(names.iter().map(|n| files.join(n).display().to_string()));
    let (ok, text) = run_tool(&python, &command_args).await;
    assert!(ok, "{text}");
    assert_eq!(text.matches("0x0000").count(), names.len(), "{text}");
    let received = receiver.received();
    assert_eq!(received.len(), names.len());
    for (instance, name) in received.iter().zip(names) {
        let original = xnatkit_dicom::read_header(&files.join(name)).unwrap();
        assert_eq!(instance.calling_ae, "PYNET");
        assert_eq!(
            instance.header.transfer_syntax, original.transfer_syntax,
            "{name}"
        );
        assert_eq!(
            instance.header.sop_instance_uid, original.sop_instance_uid,
            "{name}"
        );
    }
    receiver.stop().await;
}
