//! Sorting generated instances into sessions and scans, and routing them.

// Test helpers panic on setup failures like the tests themselves do.

use std::collections::HashMap;
use std::path::Path;

use xnatkit_dicom::testdata::{SyntheticInstance, new_uid, write_series, write_synthetic_instance};
use xnatkit_dicom::{
    ExistingSession, InstanceRef, RoutingHints, SessionKind, read_header, scan_instances_into,
    sort_instances, sort_instances_with,
};

fn load(paths: &[std::path::PathBuf]) -> Vec<InstanceRef> {
    paths
        .iter()
        .map(|path| InstanceRef {
            path: path.clone(),
            header: read_header(path).unwrap(),
        })
        .collect()
}

fn series(
    dir: &Path,
    study: &str,
    number: Option<i64>,
    modality: &str,
    description: &str,
    time: &str,
    count: usize,
) -> Vec<std::path::PathBuf> {
    let template = SyntheticInstance {
        modality: modality.into(),
        series_number: number,
        series_description: Some(description.into()),
        series_time: Some(time.into()),
        ..SyntheticInstance::new(study, &new_uid())
    };
    write_series(dir, &template, count).unwrap()
}

#[test]
fn one_session_per_study_one_scan_per_series() {
    let dir = tempfile::tempdir().unwrap();
    let study = new_uid();
    let mut paths = series(dir.path(), &study, Some(1), "MR", "localizer", "100000", 3);
    paths.extend(series(
        dir.path(),
        &study,
        Some(2),
        "MR",
        "T1 MPRAGE",
        "100500",
        4,
    ));
    paths.extend(series(
        dir.path(),
        &study,
        Some(10),
        "MR",
        "BOLD rest",
        "101000",
        2,
    ));
    // Two series sharing number 2: the later one becomes 2-MR1.
    paths.extend(series(
        dir.path(),
        &study,
        Some(2),
        "MR",
        "T1 MPRAGE repeat",
        "102000",
        2,
    ));
    // No series number: the sanitised SeriesInstanceUID is the ID.
    let unnumbered = series(dir.path(), &study, None, "SR", "report", "103000", 1);
    paths.extend(unnumbered.clone());
    // The same instance twice (another file name) is kept once.
    let copy = dir.path().join("copy.dcm");
    std::fs::copy(&paths[0], &copy).unwrap();
    paths.push(copy.clone());

    let studies = sort_instances(load(&paths), &RoutingHints::default());
    assert_eq!(studies.len(), 1);
    let session = &studies[0];
    assert_eq!(session.study_instance_uid, study);
    assert_eq!(session.kind, SessionKind::Mr);
    assert_eq!(session.session_xsi_type, "xnat:mrSessionData");
    assert_eq!(session.modality.as_deref(), Some("MR"));
    assert_eq!(session.date.as_deref(), Some("20240131"));
    assert_eq!(session.time.as_deref(), Some("101500"));
    assert_eq!(session.scanner.as_deref(), Some("SCANNER1"));
    assert_eq!(session.duplicates, vec![copy]);

    let unnumbered_uid = read_header(&unnumbered[0]).unwrap().series_instance_uid;
    let ids: Vec<&str> = session.scans.iter().map(|s| s.id.as_str()).collect();
    let sanitised = unnumbered_uid.replace('.', "_");
    assert_eq!(ids, vec!["1", "2", "2-MR1", "10", sanitised.as_str()]);

    let by_id: HashMap<&str, _> = session.scans.iter().map(|s| (s.id.as_str(), s)).collect();
    assert_eq!(by_id["1"].files.len(), 3);
    assert_eq!(by_id["2"].scan_type, "T1 MPRAGE");
    assert_eq!(by_id["2"].series_description, "T1 MPRAGE");
    assert_eq!(by_id["2"].files.len(), 4);
    assert_eq!(by_id["2"].frames, 4);
    assert_eq!(by_id["2"].xsi_type, "xnat:mrScanData");
    assert_eq!(by_id["2-MR1"].scan_type, "T1 MPRAGE repeat");
    // Written with the secondary capture SOP class: the SOP class decides the scan type.
    assert_eq!(by_id[sanitised.as_str()].xsi_type, "xnat:scScanData");
    // Files are in instance order and named by XNAT's template.
    let numbers: Vec<Option<i64>> = by_id["2"].files.iter().map(|f| f.instance_number).collect();
    assert_eq!(numbers, vec![Some(1), Some(2), Some(3), Some(4)]);
    let first = &by_id["2"].files[0];
    assert!(
        first.stored_name.starts_with(&format!("{study}-2-1-")),
        "{}",
        first.stored_name
    );
    assert!(first.stored_name.ends_with(".dcm"));
}

#[test]
fn two_studies_and_modalities() {
    let dir = tempfile::tempdir().unwrap();
    let pet_ct = new_uid();
    let mut paths = series(dir.path(), &pet_ct, Some(1), "CT", "CT AC", "090000", 2);
    paths.extend(series(
        dir.path(),
        &pet_ct,
        Some(1),
        "PT",
        "PET WB",
        "091000",
        2,
    ));
    let ct_only = new_uid();
    paths.extend(series(
        dir.path(),
        &ct_only,
        Some(3),
        "CT",
        "Head",
        "080000",
        1,
    ));

    let studies = sort_instances(load(&paths), &RoutingHints::default());
    assert_eq!(studies.len(), 2);
    let by_uid: HashMap<&str, _> = studies
        .iter()
        .map(|s| (s.study_instance_uid.as_str(), s))
        .collect();
    let pet = by_uid[pet_ct.as_str()];
    assert_eq!(pet.kind, SessionKind::Pet);
    assert_eq!(pet.modality.as_deref(), Some("PT"));
    assert_eq!(pet.modalities, vec!["CT".to_owned(), "PT".to_owned()]);
    let ids: Vec<(&str, &str)> = pet
        .scans
        .iter()
        .map(|s| (s.id.as_str(), s.xsi_type))
        .collect();
    assert_eq!(
        ids,
        vec![("1", "xnat:ctScanData"), ("1-PT1", "xnat:petScanData")]
    );
    assert_eq!(by_uid[ct_only.as_str()].kind, SessionKind::Ct);
}

#[test]
fn routing_rules_in_xnat_order() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, edit: &dyn Fn(&mut SyntheticInstance)| {
        let mut instance = SyntheticInstance::new(&new_uid(), &new_uid());
        edit(&mut instance);
        let path = dir.path().join(name);
        write_synthetic_instance(&path, &instance).unwrap();
        path
    };
    let by_comment = write("comment.dcm", &|i| {
        i.patient_comments = Some("Project:Proj_A Subject:Sub-1 Session:Sess_1 AA:false".into());
        i.study_description = Some("DESC_PROJ".into());
    });
    let by_history = write("history.dcm", &|i| {
        i.additional_patient_history = Some("note; Project: Proj_B".into());
    });
    let by_description = write("description.dcm", &|i| {
        i.study_description = Some("DESC_PROJ".into());
        i.accession_number = Some("ACC_PROJ".into());
        i.patient_name = Some("Smith^Anna Maria".into());
        i.patient_id = Some("ID 42/7".into());
    });
    let by_accession = write("accession.dcm", &|i| {
        i.study_description = Some("Brain MRI with contrast".into());
        i.accession_number = Some("ACC_PROJ".into());
    });
    let unroutable = write("unroutable.dcm", &|i| {
        i.study_description = None;
        i.patient_name = None;
        i.patient_id = None;
    });

    let studies = sort_instances(
        load(&[
            by_comment.clone(),
            by_history.clone(),
            by_description.clone(),
            by_accession.clone(),
            unroutable.clone(),
        ]),
        &RoutingHints::default(),
    );
    let route_of = |path: &Path| {
        studies
            .iter()
            .find(|s| {
                s.scans
                    .iter()
                    .any(|sc| sc.files.iter().any(|f| f.source == path))
            })
            .map(|s| s.route.clone())
            .unwrap()
    };
    let r = route_of(&by_comment);
    assert_eq!(
        (
            r.project.as_deref(),
            r.subject.as_deref(),
            r.session.as_deref()
        ),
        (Some("Proj_A"), Some("Sub-1"), Some("Sess_1"))
    );
    assert_eq!(r.auto_archive, Some(false));
    assert_eq!(route_of(&by_history).project.as_deref(), Some("Proj_B"));
    let r = route_of(&by_description);
    assert_eq!(r.project.as_deref(), Some("DESC_PROJ"));
    assert_eq!(r.subject.as_deref(), Some("Smith_Anna_Maria"));
    assert_eq!(r.session.as_deref(), Some("ID_42_7"));
    assert_eq!(route_of(&by_accession).project.as_deref(), Some("ACC_PROJ"));
    let r = route_of(&unroutable);
    assert_eq!((r.project, r.subject, r.session), (None, None, None));

    // Explicit hints win over everything; unknown projects fall through.
    let hints = RoutingHints {
        project: Some("Explicit".into()),
        subject: Some("subj 9".into()),
        session: None,
    };
    let studies = sort_instances_with(
        load(&[by_comment.clone(), by_description.clone()]),
        &hints,
        |p| p != "Proj_A",
    );
    for study in &studies {
        assert_eq!(study.route.project.as_deref(), Some("Explicit"));
        assert_eq!(study.route.subject.as_deref(), Some("subj_9"));
    }
    let studies = sort_instances_with(load(&[by_comment]), &RoutingHints::default(), |p| {
        p != "Proj_A"
    });
    assert_eq!(studies[0].route.project.as_deref(), Some("DESC_PROJ"));
}

#[test]
fn appending_keeps_existing_scan_ids() {
    let dir = tempfile::tempdir().unwrap();
    let study = new_uid();
    let first = series(dir.path(), &study, Some(1), "MR", "T1", "100000", 2);
    let existing_series = read_header(&first[0]).unwrap().series_instance_uid;
    let existing = ExistingSession {
        scan_ids: HashMap::from([(existing_series.clone(), "1".to_owned())]),
        other_scan_ids: ["1-MR1".to_owned()].into(),
    };
    // More instances of the existing series, and a new series reusing number 1.
    let more = write_series(
        dir.path(),
        &SyntheticInstance {
            series_number: Some(1),
            ..SyntheticInstance::new(&study, &existing_series)
        },
        2,
    )
    .unwrap();
    let new_series = series(dir.path(), &study, Some(1), "MR", "T1 again", "110000", 1);
    let mut batch = load(&more);
    batch.extend(load(&new_series));
    let scans = scan_instances_into(&existing, batch);
    let ids: Vec<(&str, usize)> = scans
        .iter()
        .map(|s| (s.id.as_str(), s.files.len()))
        .collect();
    assert_eq!(ids, vec![("1", 2), ("1-MR2", 1)]);
}

#[test]
fn one_session_even_when_patient_names_differ_within_a_study() {
    let dir = tempfile::tempdir().unwrap();
    let study = new_uid();
    let mut paths = series(dir.path(), &study, Some(1), "MR", "T1", "100000", 2);
    paths.extend(
        write_series(
            dir.path(),
            &SyntheticInstance {
                series_number: Some(99),
                patient_name: Some("DOE^JANE^^^".into()),
                ..SyntheticInstance::new(&study, &new_uid())
            },
            1,
        )
        .unwrap(),
    );
    let studies = sort_instances(load(&paths), &RoutingHints::default());
    assert_eq!(studies.len(), 1);
    assert_eq!(studies[0].scans.len(), 2);
}
