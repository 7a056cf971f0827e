//! The study assembler with tokio's paused clock: studies are released only after
//! their quiet period, each new instance restarting it.

// Test helpers panic on setup failures like the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use xnatkit_dicom::DicomHeader;
use xnatkit_dicom::scp::{InstanceSink, ReceivedInstance, StudyAssembler};

fn instance(study: &str, called_ae: &str, n: u32) -> ReceivedInstance {
    ReceivedInstance {
        path: PathBuf::from(format!("{study}-{n}.dcm")),
        header: DicomHeader {
            study_instance_uid: study.to_owned(),
            sop_instance_uid: format!("{study}.{n}"),
            ..DicomHeader::default()
        },
        calling_ae: "MODALITY".into(),
        called_ae: called_ae.into(),
        remote_addr: "127.0.0.1:104".parse().unwrap(),
    }
}

#[tokio::test(start_paused = true)]
async fn studies_are_released_after_their_quiet_period() {
    let assembler = StudyAssembler::new(Duration::from_secs(60));
    assembler
        .instance_received(instance("1.1", "XNAT", 1))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    assembler.add(instance("1.2", "XNAT", 1));
    tokio::time::advance(Duration::from_secs(20)).await;
    // Study 1.1 gets another instance at t=50 s: its quiet period restarts.
    assembler.add(instance("1.1", "XNAT", 2));
    // The same study sent to another AE title is collected apart.
    assembler.add(instance("1.1", "OTHER", 1));
    assert_eq!(assembler.pending_studies(), 3);

    let started = tokio::time::Instant::now();
    let first = assembler.next_ready().await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].header.study_instance_uid, "1.2");
    // 1.2 arrived at t=30 s, so it is ready at t=90 s, 40 s after we started waiting.
    assert_eq!(started.elapsed(), Duration::from_secs(40));

    let second = assembler.next_ready().await;
    let third = assembler.next_ready().await;
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    let mut released: Vec<(String, usize)> = [second, third]
        .iter()
        .map(|batch| (batch[0].called_ae.clone(), batch.len()))
        .collect();
    released.sort();
    assert_eq!(
        released,
        vec![("OTHER".to_owned(), 1), ("XNAT".to_owned(), 2)]
    );
    assert_eq!(assembler.pending_studies(), 0);
}

#[tokio::test(start_paused = true)]
async fn waiting_consumer_wakes_for_new_studies_and_flush_takes_the_rest() {
    let assembler = std::sync::Arc::new(StudyAssembler::new(Duration::from_secs(5)));
    let consumer = {
        let assembler = assembler.clone();
        tokio::spawn(async move { assembler.next_ready().await })
    };
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert!(!consumer.is_finished(), "nothing received yet");
    assembler.add(instance("2.1", "XNAT", 1));
    let batch = consumer.await.unwrap();
    assert_eq!(batch.len(), 1);

    assembler.add(instance("2.2", "XNAT", 1));
    assembler.add(instance("2.3", "XNAT", 1));
    let flushed = assembler.flush_all();
    assert_eq!(flushed.len(), 2);
    assert_eq!(assembler.pending_studies(), 0);
}
