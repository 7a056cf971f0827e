//! Sorting instances into sessions and scans as XNAT's session builder does
//! (XNAT's session builder): one session per StudyInstanceUID (and
//! destination), one scan per SeriesInstanceUID, scan ID = SeriesNumber.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use crate::header::DicomHeader;
use crate::kind::SessionKind;
use xnatkit_model::label::sanitize_label;

use crate::naming::stored_file_name;
use crate::route::{Route, RoutingHints, route_with};

/// One instance to sort: where it is now, and its header.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRef {
    pub path: PathBuf,
    pub header: DicomHeader,
}

/// One image session to build: the instances of one study going to one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedStudy {
    pub study_instance_uid: String,
    pub route: Route,
    pub kind: SessionKind,
    /// `kind.session_xsi_type()`, e.g. `xnat:mrSessionData`.
    pub session_xsi_type: &'static str,
    /// The lead modality (the one that chose `kind`), or the first one seen.
    pub modality: Option<String>,
    /// Every modality in the study, sorted.
    pub modalities: Vec<String>,
    /// Study date `YYYYMMDD`.
    pub date: Option<String>,
    /// Study time as stored (`HHMMSS[.ffffff]`).
    pub time: Option<String>,
    pub study_description: Option<String>,
    pub study_id: Option<String>,
    pub accession_number: Option<String>,
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    /// Station Name: XNAT's `scanner`.
    pub scanner: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub institution: Option<String>,
    pub operator: Option<String>,
    pub field_strength: Option<String>,
    pub body_part: Option<String>,
    pub scans: Vec<SortedScan>,
    /// Files holding a SOP instance already taken from another file (dropped).
    pub duplicates: Vec<PathBuf>,
}

/// One scan: the instances of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedScan {
    /// Scan ID: SeriesNumber, `N-MR1`… when several series share N, the sanitised
    /// SeriesInstanceUID when there is no SeriesNumber.
    pub id: String,
    /// Scan type: the SeriesDescription (XNAT's practical rule without a mapping).
    pub scan_type: String,
    pub series_description: String,
    /// Modality of the series (`OT` when neither Modality nor SOP class tell).
    pub modality: String,
    pub series_instance_uid: String,
    pub series_number: Option<i64>,
    /// e.g. `xnat:mrScanData`.
    pub xsi_type: &'static str,
    pub start_date: Option<String>,
    pub start_time: Option<String>,
    pub body_part: Option<String>,
    pub protocol_name: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub scanner: Option<String>,
    /// Number of frames (instances, or the frames of multi-frame instances).
    pub frames: u64,
    /// Ordered by instance number, then name.
    pub files: Vec<SortedFile>,
}

/// One instance in a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedFile {
    pub source: PathBuf,
    /// XNAT's default file name for this instance (its `DicomFileNamer`
    /// pattern, see [`stored_file_name`]).
    pub stored_name: String,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub instance_number: Option<i64>,
}

/// Scans already present in a session, for appending instances to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExistingSession {
    /// SeriesInstanceUID → scan ID of the scans the session has.
    pub scan_ids: HashMap<String, String>,
    /// IDs of scans without a series UID (e.g. added by hand): new scans avoid them too.
    pub other_scan_ids: HashSet<String>,
}

/// Sorts a batch into sessions and scans. Routing uses [`crate::route`] (no project
/// existence check); see [`sort_instances_with`].
pub fn sort_instances(instances: Vec<InstanceRef>, hints: &RoutingHints) -> Vec<SortedStudy> {
    sort_instances_with(instances, hints, |_| true)
}

/// Sorts a batch into sessions and scans, routing each instance with
/// [`crate::route_with`]. Studies come out ordered by StudyInstanceUID.
pub fn sort_instances_with(
    instances: Vec<InstanceRef>,
    hints: &RoutingHints,
    project_usable: impl Fn(&str) -> bool,
) -> Vec<SortedStudy> {
    // XNAT keys a session by project, StudyInstanceUID and session label; the
    // subject (and AA flag) come from the first instance of the session.
    type SessionKey = (String, Option<String>, Option<String>);
    let mut studies: BTreeMap<SessionKey, (Route, Vec<InstanceRef>)> = BTreeMap::new();
    for instance in instances {
        let route = route_with(&instance.header, hints, &project_usable);
        let key = (
            instance.header.study_instance_uid.clone(),
            route.project.clone(),
            route.session.clone(),
        );
        studies
            .entry(key)
            .or_insert_with(|| (route, Vec::new()))
            .1
            .push(instance);
    }
    studies
        .into_iter()
        .map(|((study_uid, _, _), (route, instances))| build_study(study_uid, route, instances))
        .collect()
}

/// Sorts instances being added to an existing session: series it already has keep
/// their scan IDs, new series get IDs that do not clash with the existing ones.
pub fn scan_instances_into(
    existing: &ExistingSession,
    instances: Vec<InstanceRef>,
) -> Vec<SortedScan> {
    let (instances, _duplicates) = dedupe(instances);
    build_scans(instances, existing)
}

fn dedupe(instances: Vec<InstanceRef>) -> (Vec<InstanceRef>, Vec<PathBuf>) {
    let mut seen = HashSet::new();
    let mut kept = Vec::with_capacity(instances.len());
    let mut duplicates = Vec::new();
    for instance in instances {
        if seen.insert(instance.header.sop_instance_uid.clone()) {
            kept.push(instance);
        } else {
            duplicates.push(instance.path);
        }
    }
    (kept, duplicates)
}

fn first_some(
    instances: &[InstanceRef],
    field: impl Fn(&DicomHeader) -> &Option<String>,
) -> Option<String> {
    instances.iter().find_map(|i| field(&i.header).clone())
}

fn build_study(
    study_instance_uid: String,
    route: Route,
    instances: Vec<InstanceRef>,
) -> SortedStudy {
    let (instances, duplicates) = dedupe(instances);
    let mut modalities: Vec<String> = instances
        .iter()
        .filter_map(|i| i.header.effective_modality())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    modalities.sort();
    let kind = SessionKind::from_modalities(&modalities);
    let modality = SessionKind::lead_modality(modalities.iter().map(String::as_str))
        .map(str::to_owned)
        .or_else(|| modalities.first().cloned());
    SortedStudy {
        study_instance_uid,
        route,
        kind,
        session_xsi_type: kind.session_xsi_type(),
        modality,
        modalities,
        date: first_some(&instances, |h| &h.study_date),
        time: first_some(&instances, |h| &h.study_time),
        study_description: first_some(&instances, |h| &h.study_description),
        study_id: first_some(&instances, |h| &h.study_id),
        accession_number: first_some(&instances, |h| &h.accession_number),
        patient_name: first_some(&instances, |h| &h.patient_name),
        patient_id: first_some(&instances, |h| &h.patient_id),
        scanner: first_some(&instances, |h| &h.station_name),
        manufacturer: first_some(&instances, |h| &h.manufacturer),
        model: first_some(&instances, |h| &h.manufacturer_model_name),
        institution: first_some(&instances, |h| &h.institution_name),
        operator: first_some(&instances, |h| &h.operators_name),
        field_strength: first_some(&instances, |h| &h.magnetic_field_strength),
        body_part: first_some(&instances, |h| &h.body_part_examined),
        scans: build_scans(instances, &ExistingSession::default()),
        duplicates,
    }
}

fn build_scans(instances: Vec<InstanceRef>, existing: &ExistingSession) -> Vec<SortedScan> {
    let mut series: HashMap<String, Vec<InstanceRef>> = HashMap::new();
    for instance in instances {
        series
            .entry(instance.header.series_instance_uid.clone())
            .or_default()
            .push(instance);
    }
    // The series acquired first keeps the plain SeriesNumber when several share it.
    let mut ordered: Vec<(String, Vec<InstanceRef>)> = series.into_iter().collect();
    ordered.sort_by_cached_key(|(uid, members)| {
        let first = &members[0].header;
        (
            first.series_date.clone().unwrap_or_default(),
            first.series_time.clone().unwrap_or_default(),
            uid.clone(),
        )
    });

    let mut taken: HashSet<String> = existing
        .scan_ids
        .values()
        .chain(existing.other_scan_ids.iter())
        .cloned()
        .collect();
    let mut scans: Vec<SortedScan> = ordered
        .into_iter()
        .map(|(series_uid, members)| {
            let id = match existing.scan_ids.get(&series_uid) {
                Some(id) => id.clone(),
                None => {
                    let id = new_scan_id(&members[0].header, &taken);
                    taken.insert(id.clone());
                    id
                }
            };
            build_scan(id, series_uid, members)
        })
        .collect();
    scans.sort_by(|a, b| compare_scan_ids(&a.id, &b.id));
    scans
}

fn new_scan_id(header: &DicomHeader, taken: &HashSet<String>) -> String {
    let base = match header.series_number {
        Some(number) => number.to_string(),
        None => sanitize_label(&header.series_instance_uid).unwrap_or_default(),
    };
    if !taken.contains(&base) {
        return base;
    }
    let modality = header
        .effective_modality()
        .and_then(|m| sanitize_label(&m))
        .unwrap_or_else(|| "OT".to_owned());
    (1u64..)
        .map(|n| format!("{base}-{modality}{n}"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(base)
}

fn build_scan(id: String, series_instance_uid: String, members: Vec<InstanceRef>) -> SortedScan {
    let first = members[0].header.clone();
    let modality = first
        .effective_modality()
        .unwrap_or_else(|| "OT".to_owned());
    let series_description = first_some(&members, |h| &h.series_description).unwrap_or_default();
    let frames = members
        .iter()
        .map(|m| m.header.number_of_frames.filter(|n| *n > 0).unwrap_or(1) as u64)
        .sum();
    let mut files: Vec<SortedFile> = members
        .iter()
        .map(|m| SortedFile {
            source: m.path.clone(),
            stored_name: stored_file_name(&m.header),
            sop_instance_uid: m.header.sop_instance_uid.clone(),
            sop_class_uid: m.header.sop_class_uid.clone(),
            instance_number: m.header.instance_number,
        })
        .collect();
    files.sort_by(|a, b| {
        a.instance_number
            .cmp(&b.instance_number)
            .then_with(|| a.stored_name.cmp(&b.stored_name))
    });
    SortedScan {
        id,
        scan_type: series_description.clone(),
        series_description,
        xsi_type: SessionKind::scan_xsi_type_for(&first.sop_class_uid, &modality),
        modality,
        series_instance_uid,
        series_number: first.series_number,
        start_date: first_some(&members, |h| &h.series_date)
            .or_else(|| first.acquisition_date.clone()),
        start_time: first_some(&members, |h| &h.series_time)
            .or_else(|| first.acquisition_time.clone()),
        body_part: first_some(&members, |h| &h.body_part_examined),
        protocol_name: first_some(&members, |h| &h.protocol_name),
        manufacturer: first_some(&members, |h| &h.manufacturer),
        model: first_some(&members, |h| &h.manufacturer_model_name),
        scanner: first_some(&members, |h| &h.station_name),
        frames,
        files,
    }
}

/// XNAT's "maybe numeric" order: by leading number, then by the rest as text
/// (`1`, `1-MR1`, `2`, `10`, then the rest as text, e.g. sanitised UIDs).
pub fn compare_scan_ids(a: &str, b: &str) -> Ordering {
    let split = |s: &str| {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        // Only `N` and `N-…` (XNAT's collision suffix) count as numbered IDs.
        let numbered = matches!(s.as_bytes().get(digits), None | Some(b'-'));
        let number = numbered.then(|| s[..digits].parse::<u128>().ok()).flatten();
        (number, s[digits..].to_owned())
    };
    let (na, ra) = split(a);
    let (nb, rb) = split(b);
    match (na, nb) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| ra.cmp(&rb)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}
