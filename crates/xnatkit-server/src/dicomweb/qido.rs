//! QIDO-RS searches: the matching keys a study, series or instance search
//! understands, how a key matches (UID lists, `*`/`?` wildcards, date and
//! time ranges), and the DICOM JSON of each match, all from database rows.
//! Keys are given by keyword or by tag; anything else in the query is a
//! client error (400), so a typo never silently widens a search.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value as Json};

use super::index::index_session;
use super::json::{attr, attr_int, attr_multi};
use super::visible_studies_matching;
use crate::archive::{Actor, Error, Result};
use crate::store::{InstanceRow, SeriesRow, StudyFilter, StudyRow};

/// What a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Study,
    Series,
    Instance,
}

/// The matching keys: (keyword, tag, level).
const KEYS: &[(&str, &str, Level)] = &[
    ("StudyDate", "00080020", Level::Study),
    ("StudyTime", "00080030", Level::Study),
    ("AccessionNumber", "00080050", Level::Study),
    ("ModalitiesInStudy", "00080061", Level::Study),
    ("ReferringPhysicianName", "00080090", Level::Study),
    ("StudyDescription", "00081030", Level::Study),
    ("PatientName", "00100010", Level::Study),
    ("PatientID", "00100020", Level::Study),
    ("StudyInstanceUID", "0020000D", Level::Study),
    ("StudyID", "00200010", Level::Study),
    ("Modality", "00080060", Level::Series),
    ("SeriesDescription", "0008103E", Level::Series),
    ("SeriesInstanceUID", "0020000E", Level::Series),
    ("SeriesNumber", "00200011", Level::Series),
    ("SOPClassUID", "00080016", Level::Instance),
    ("SOPInstanceUID", "00080018", Level::Instance),
    ("InstanceNumber", "00200013", Level::Instance),
];

/// A parsed search.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Matching keys by tag (`GGGGEEEE`) with their value.
    pub filters: Vec<(String, String)>,
    pub limit: Option<usize>,
    pub offset: usize,
}

fn key_tag(key: &str) -> Option<(&'static str, Level)> {
    KEYS.iter()
        .find(|(kw, tag, _)| kw.eq_ignore_ascii_case(key) || tag.eq_ignore_ascii_case(key))
        .map(|(_, tag, level)| (*tag, *level))
}

/// A keyword or tag a client may name in `includefield`.
fn known_attribute(name: &str) -> bool {
    use dicom_core::dictionary::DataDictionary;
    let dict = dicom_dictionary_std::StandardDataDictionary;
    if name.eq_ignore_ascii_case("all") || dict.by_name(name).is_some() {
        return true;
    }
    name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Search {
    /// Parses the query pairs of a search at `level`. Keys of that level
    /// and the levels above are accepted (a flat `/series` search may name
    /// study keys); a key `fixed` by the path may not be repeated.
    pub fn parse(level: Level, pairs: &[(String, String)]) -> Result<Self> {
        let mut search = Search::default();
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    search.limit = Some(value.parse().map_err(|_| {
                        Error::Invalid(format!("limit={value} is not a number; send limit=N"))
                    })?)
                }
                "offset" => {
                    search.offset = value.parse().map_err(|_| {
                        Error::Invalid(format!("offset={value} is not a number; send offset=N"))
                    })?
                }
                "fuzzymatching" => {
                    if !matches!(value.as_str(), "true" | "false") {
                        return Err(Error::Invalid(format!(
                            "fuzzymatching={value}: send true or false"
                        )));
                    }
                }
                "includefield" => {
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        if !known_attribute(name) {
                            return Err(Error::Invalid(format!(
                                "includefield {name} is neither a DICOM keyword nor a tag"
                            )));
                        }
                    }
                }
                other => {
                    let Some((tag, key_level)) = key_tag(other) else {
                        return Err(Error::Invalid(format!(
                            "{other} is not a matching key this server supports; use one of {}",
                            KEYS.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
                        )));
                    };
                    if key_level > level {
                        return Err(Error::Invalid(format!(
                            "{other} is not a matching key of this search level"
                        )));
                    }
                    if (tag == "00080020" || tag == "00080030") && !valid_range(value) {
                        return Err(Error::Invalid(format!(
                            "{other}={value} is not a date/time or a range A-B"
                        )));
                    }
                    search.filters.push((tag.to_owned(), value.clone()));
                }
            }
        }
        Ok(search)
    }

    fn get(&self, tag: &str) -> impl Iterator<Item = &str> {
        self.filters
            .iter()
            .filter(move |(t, _)| t == tag)
            .map(|(_, v)| v.as_str())
    }

    /// The one value of a key, when it is given once and not universal.
    fn single(&self, tag: &str) -> Option<&str> {
        let mut values = self.get(tag);
        let first = values.next()?;
        (values.next().is_none() && !first.is_empty() && first != "*").then_some(first)
    }

    /// What the database can narrow a study search by (a superset of the
    /// matches: every key is still matched exactly afterwards).
    pub fn study_filter(&self) -> StudyFilter {
        let mut filter = StudyFilter::default();
        if let Some(uid) = self.single("0020000D").filter(|u| !u.contains([',', '\\'])) {
            filter.study_uid = uid.to_owned();
        }
        if let Some(id) = self.single("00100020") {
            filter.patient_id = like_pattern(id);
        }
        if let Some(name) = self.single("00100010").filter(|n| n.is_ascii()) {
            filter.patient_name = like_pattern(&name.to_lowercase());
        }
        if let Some(acc) = self.single("00080050").filter(|a| !a.contains(['*', '?'])) {
            filter.accession_number = acc.to_owned();
        }
        if let Some(range) = self.single("00080020") {
            let (from, to) = range.split_once('-').unwrap_or((range, range));
            let iso = |d: &str| {
                (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
            };
            match (iso(from), iso(to)) {
                (Some(f), Some(t)) => (filter.date_from, filter.date_to) = (f, t),
                (Some(f), None) if to.is_empty() => filter.date_from = f,
                (None, Some(t)) if from.is_empty() => filter.date_to = t,
                _ => {}
            }
        }
        filter
    }

    fn page<T>(&self, all: Vec<T>) -> Vec<T> {
        let rest = all.into_iter().skip(self.offset);
        match self.limit {
            Some(n) => rest.take(n).collect(),
            None => rest.collect(),
        }
    }
}

fn valid_range(value: &str) -> bool {
    value.is_empty()
        || value
            .split('-')
            .all(|part| part.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
            && value.matches('-').count() <= 1
}

/// A DICOM wildcard value as a SQL LIKE pattern with `\` as the escape.
fn like_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            '?' => out.push('_'),
            other => out.push(other),
        }
    }
    out
}

/// `*` and `?` wildcard matching.
fn wildcard(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| wildcard(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && wildcard(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && wildcard(rest, &text[1..]),
    }
}

/// Single-value matching: empty matches all, `*`/`?` wildcards, else equal.
fn text_matches(key: &str, value: &str, fold_case: bool) -> bool {
    if key.is_empty() || key == "*" {
        return true;
    }
    let (key, value) = if fold_case {
        (key.to_lowercase(), value.to_lowercase())
    } else {
        (key.to_owned(), value.to_owned())
    };
    if key.contains(['*', '?']) {
        let p: Vec<char> = key.chars().collect();
        let t: Vec<char> = value.chars().collect();
        wildcard(&p, &t)
    } else {
        key == value
    }
}

/// UID list matching (`a,b` or `a\b`).
fn uid_matches(key: &str, value: &str) -> bool {
    key.is_empty() || key.split([',', '\\']).any(|k| k.trim() == value)
}

/// Range matching on digits only (`YYYYMMDD`, `HHMMSS`).
fn range_matches(key: &str, value: &str) -> bool {
    if key.is_empty() {
        return true;
    }
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let value = digits(value);
    if value.is_empty() {
        return false;
    }
    match key.split_once('-') {
        None => value.starts_with(&digits(key)),
        Some((from, to)) => {
            let (from, to) = (digits(from), digits(to));
            let upto = &value[..value.len().min(to.len().max(1))];
            (from.is_empty() || value.as_str() >= from.as_str())
                && (to.is_empty() || upto <= to.as_str())
        }
    }
}

/// Facts of a study gathered from several rows.
#[derive(Debug, Clone, Default)]
pub struct StudyFacts {
    pub modalities: BTreeSet<String>,
    pub series: i64,
    pub instances: i64,
}

fn study_matches(search: &Search, study: &StudyRow, facts: &StudyFacts) -> bool {
    search
        .get("0020000D")
        .all(|k| uid_matches(k, &study.study_uid))
        && search
            .get("00100020")
            .all(|k| text_matches(k, &study.patient_id, false))
        && search
            .get("00100010")
            .all(|k| text_matches(k, &study.patient_name, true))
        && search
            .get("00080050")
            .all(|k| text_matches(k, &study.accession_number, false))
        && search
            .get("00081030")
            .all(|k| text_matches(k, &study.description, true))
        && search
            .get("00080020")
            .all(|k| range_matches(k, &study.date))
        && search
            .get("00080030")
            .all(|k| range_matches(k, &study.time))
        && search.get("00080061").all(|k| {
            k.is_empty()
                || k.split([',', '\\'])
                    .any(|m| facts.modalities.contains(m.trim()))
        })
        && search.get("00080090").all(str::is_empty)
        && search.get("00200010").all(str::is_empty)
}

fn series_matches(search: &Search, series: &SeriesRow) -> bool {
    search
        .get("0020000E")
        .all(|k| uid_matches(k, &series.series_uid))
        && search
            .get("00080060")
            .all(|k| uid_matches(k, &series.modality))
        && search
            .get("0008103E")
            .all(|k| text_matches(k, &series.description, true))
        && search
            .get("00200011")
            .all(|k| k.is_empty() || k.trim() == series.scan_id)
}

fn instance_matches(search: &Search, instance: &InstanceRow) -> bool {
    search
        .get("00080018")
        .all(|k| uid_matches(k, &instance.sop_instance_uid))
        && search
            .get("00080016")
            .all(|k| uid_matches(k, &instance.sop_class_uid))
        && search
            .get("00200013")
            .all(|k| k.is_empty() || k.trim().parse::<i64>().ok() == instance.instance_number)
}

fn dicom_date(xnat: &str) -> String {
    xnat.chars().filter(char::is_ascii_digit).collect()
}

/// The study attributes of a result at any level.
pub fn study_json(out: &mut Map<String, Json>, study: &StudyRow) {
    attr(out, "00080020", "DA", &dicom_date(&study.date));
    attr(out, "00080030", "TM", &dicom_date(&study.time));
    attr(out, "00080050", "SH", &study.accession_number);
    attr(out, "00080090", "PN", "");
    attr(out, "00081030", "LO", &study.description);
    attr(out, "00100010", "PN", &study.patient_name);
    attr(out, "00100020", "LO", &study.patient_id);
    attr(out, "0020000D", "UI", &study.study_uid);
    attr(out, "00200010", "SH", "");
}

fn series_json(out: &mut Map<String, Json>, series: &SeriesRow) {
    attr(out, "00080060", "CS", &series.modality);
    attr(out, "0008103E", "LO", &series.description);
    attr(out, "0020000E", "UI", &series.series_uid);
    attr_int(out, "00200011", "IS", series.scan_id.parse().ok());
}

/// The visible studies of a search and the facts gathered from other rows
/// (modalities, counts). Facts are fetched per session for the sessions a
/// search returns; only a `ModalitiesInStudy` filter needs them for every
/// study, and then one site-wide query fetches them all.
struct Catalogue {
    studies: Vec<StudyRow>,
    facts: HashMap<String, StudyFacts>,
    series_instances: HashMap<i64, i64>,
    /// Sessions whose facts are in `facts`.
    known: BTreeSet<String>,
}

impl Catalogue {
    /// Nothing loaded yet: facts come through [`Catalogue::ensure`].
    fn empty() -> Self {
        Catalogue {
            studies: Vec::new(),
            facts: HashMap::new(),
            series_instances: HashMap::new(),
            known: BTreeSet::new(),
        }
    }

    async fn new(
        actor: &Actor<'_>,
        project: Option<&str>,
        study_uid: Option<&str>,
        search: &Search,
    ) -> Result<Self> {
        let mut filter = search.study_filter();
        if let Some(uid) = study_uid {
            filter.study_uid = uid.to_owned();
        }
        let studies = visible_studies_matching(actor, project, &filter).await?;
        let mut cat = Catalogue {
            studies,
            facts: HashMap::new(),
            series_instances: HashMap::new(),
            known: BTreeSet::new(),
        };
        if search.get("00080061").next().is_some() {
            cat.load(actor, None).await?;
            cat.known = cat
                .studies
                .iter()
                .map(|s| s.experiment_id.clone())
                .collect();
        } else if study_uid.is_some() {
            let ids: Vec<String> = cat
                .studies
                .iter()
                .map(|s| s.experiment_id.clone())
                .collect();
            cat.ensure(actor, &ids).await?;
        }
        Ok(cat)
    }

    async fn load(&mut self, actor: &Actor<'_>, experiment_id: Option<&str>) -> Result<()> {
        let store = actor.state.store();
        let series = store.dicom_series_modalities(experiment_id).await?;
        let instances = store.dicom_instance_counts(experiment_id).await?;
        self.add_facts(series, instances);
        Ok(())
    }

    fn add_facts(
        &mut self,
        series: Vec<(String, String, i64)>,
        instances: Vec<(String, i64, i64)>,
    ) {
        for (experiment, modality, count) in series {
            let f = self.facts.entry(experiment).or_default();
            if !modality.is_empty() {
                f.modalities.insert(modality);
            }
            f.series += count;
        }
        for (experiment, scan, count) in instances {
            self.facts.entry(experiment).or_default().instances += count;
            self.series_instances.insert(scan, count);
        }
    }

    /// Fetches the facts of these sessions unless known (two queries for
    /// all of them).
    async fn ensure(&mut self, actor: &Actor<'_>, experiment_ids: &[String]) -> Result<()> {
        let unknown: Vec<String> = experiment_ids
            .iter()
            .filter(|id| self.known.insert((*id).clone()))
            .cloned()
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let (series, instances) = actor.state.store().dicom_study_facts(&unknown).await?;
        self.add_facts(series, instances);
        Ok(())
    }

    fn facts_of(&self, experiment_id: &str) -> &StudyFacts {
        static EMPTY: std::sync::OnceLock<StudyFacts> = std::sync::OnceLock::new();
        self.facts
            .get(experiment_id)
            .unwrap_or_else(|| EMPTY.get_or_init(StudyFacts::default))
    }

    /// The visible studies the study-level keys of `search` match.
    fn matching(&self, search: &Search) -> Vec<StudyRow> {
        self.studies
            .iter()
            .filter(|s| study_matches(search, s, self.facts_of(&s.experiment_id)))
            .cloned()
            .collect()
    }
}

/// Where results point (`RetrieveURL`): the DICOMweb root of the request.
pub struct Base<'a>(pub &'a str);

impl Base<'_> {
    pub fn study(&self, uid: &str) -> String {
        format!("{}/studies/{uid}", self.0)
    }
    pub fn series(&self, study: &str, series: &str) -> String {
        format!("{}/series/{series}", self.study(study))
    }
    pub fn instance(&self, study: &str, series: &str, sop: &str) -> String {
        format!("{}/instances/{sop}", self.series(study, series))
    }
}

/// `/studies`.
pub async fn search_studies(
    actor: &Actor<'_>,
    project: Option<&str>,
    search: &Search,
    base: &Base<'_>,
) -> Result<Vec<Json>> {
    if search.filters.is_empty() {
        // No matching key: the database pages the visible studies itself.
        let readable: Vec<String> = super::readable_projects(actor, project)
            .await?
            .into_iter()
            .collect();
        let page = actor
            .state
            .store()
            .dicom_studies_page(&readable, search.limit, search.offset)
            .await?;
        let mut cat = Catalogue::empty();
        let ids: Vec<String> = page.iter().map(|s| s.experiment_id.clone()).collect();
        cat.ensure(actor, &ids).await?;
        return Ok(studies_json(&cat, &page, base));
    }
    let mut cat = Catalogue::new(actor, project, None, search).await?;
    // One result per study UID (its first visible session); only the page's
    // rows are copied out of the catalogue.
    let mut seen = HashSet::new();
    let page: Vec<StudyRow> = {
        let matching = cat
            .studies
            .iter()
            .filter(|s| study_matches(search, s, cat.facts_of(&s.experiment_id)))
            .filter(|s| seen.insert(s.study_uid.as_str()));
        let skipped = matching.skip(search.offset);
        match search.limit {
            Some(n) => skipped.take(n).cloned().collect(),
            None => skipped.cloned().collect(),
        }
    };
    let ids: Vec<String> = page.iter().map(|s| s.experiment_id.clone()).collect();
    cat.ensure(actor, &ids).await?;
    Ok(studies_json(&cat, &page, base))
}

/// The DICOM JSON of a page of studies, with their facts from `cat`.
fn studies_json(cat: &Catalogue, page: &[StudyRow], base: &Base<'_>) -> Vec<Json> {
    page.iter()
        .map(|study| {
            let facts = cat.facts_of(&study.experiment_id);
            let mut out = Map::new();
            study_json(&mut out, study);
            attr_multi(
                &mut out,
                "00080061",
                "CS",
                &facts.modalities.iter().cloned().collect::<Vec<_>>(),
            );
            attr_int(&mut out, "00201206", "IS", Some(facts.series));
            attr_int(&mut out, "00201208", "IS", Some(facts.instances));
            attr(&mut out, "00081190", "UR", &base.study(&study.study_uid));
            Json::Object(out)
        })
        .collect()
}

/// `/series` and `/studies/{uid}/series`.
pub async fn search_series(
    actor: &Actor<'_>,
    project: Option<&str>,
    study_uid: Option<&str>,
    search: &Search,
    base: &Base<'_>,
) -> Result<Vec<Json>> {
    let store = actor.state.store();
    if let Some(uid) = study_uid {
        for s in super::study_sessions(actor, project, uid).await? {
            index_session(actor.state, Some(&s.experiment_id)).await?;
        }
    } else {
        index_session(actor.state, None).await?;
    }
    let mut cat = Catalogue::new(actor, project, study_uid, search).await?;
    let studies = cat.matching(search);
    let by_id: HashMap<&str, &StudyRow> = studies
        .iter()
        .map(|s| (s.experiment_id.as_str(), s))
        .collect();
    let all_series = match study_uid {
        Some(_) => {
            let mut out = Vec::new();
            for s in &studies {
                out.extend(store.dicom_series(Some(&s.experiment_id)).await?);
            }
            out
        }
        None => store.dicom_series(None).await?,
    };
    let matches: Vec<(&StudyRow, SeriesRow)> = all_series
        .into_iter()
        .filter_map(|series| {
            let study = by_id.get(series.experiment_id.as_str())?;
            series_matches(search, &series).then_some((*study, series))
        })
        .collect();
    let page = search.page(matches);
    let ids: Vec<String> = page.iter().map(|(s, _)| s.experiment_id.clone()).collect();
    cat.ensure(actor, &ids).await?;
    Ok(page
        .into_iter()
        .map(|(study, series)| {
            let mut out = Map::new();
            study_json(&mut out, study);
            series_json(&mut out, &series);
            attr_int(
                &mut out,
                "00201209",
                "IS",
                Some(
                    cat.series_instances
                        .get(&series.scan_pk)
                        .copied()
                        .unwrap_or(0),
                ),
            );
            attr(
                &mut out,
                "00081190",
                "UR",
                &base.series(&study.study_uid, &series.series_uid),
            );
            Json::Object(out)
        })
        .collect())
}

/// The instances a search or a retrieval at instance level sees: one
/// row per SOP Instance UID in each visible session.
pub async fn instances_of(
    actor: &Actor<'_>,
    studies: &[StudyRow],
    series_uid: Option<&str>,
    whole_site: bool,
) -> Result<Vec<(StudyRow, InstanceRow)>> {
    let store = actor.state.store();
    let mut rows = Vec::new();
    if whole_site {
        index_session(actor.state, None).await?;
        let by_id: HashMap<&str, &StudyRow> = studies
            .iter()
            .map(|s| (s.experiment_id.as_str(), s))
            .collect();
        for row in store.dicom_instances(None, None).await? {
            if let Some(study) = by_id.get(row.experiment_id.as_str()) {
                rows.push(((*study).clone(), row));
            }
        }
    } else {
        for study in studies {
            index_session(actor.state, Some(&study.experiment_id)).await?;
            for row in store
                .dicom_instances(Some(&study.experiment_id), series_uid)
                .await?
            {
                rows.push((study.clone(), row));
            }
        }
    }
    let mut seen = BTreeSet::new();
    rows.retain(|(_, r)| seen.insert(r.sop_instance_uid.clone()));
    Ok(rows)
}

/// `/instances`, `/studies/{uid}/instances` and
/// `/studies/{uid}/series/{uid}/instances`.
pub async fn search_instances(
    actor: &Actor<'_>,
    project: Option<&str>,
    study_uid: Option<&str>,
    series_uid: Option<&str>,
    search: &Search,
    base: &Base<'_>,
) -> Result<Vec<Json>> {
    if let Some(uid) = study_uid {
        super::study_sessions(actor, project, uid).await?;
    }
    let cat = Catalogue::new(actor, project, study_uid, search).await?;
    let studies = cat.matching(search);
    let store = actor.state.store();
    let mut series_by_pk: HashMap<i64, SeriesRow> = HashMap::new();
    let rows = instances_of(actor, &studies, series_uid, study_uid.is_none()).await?;
    let mut matches = Vec::new();
    for (study, row) in rows {
        if !series_by_pk.contains_key(&row.scan_pk) {
            for s in store.dicom_series(Some(&row.experiment_id)).await? {
                series_by_pk.insert(s.scan_pk, s);
            }
        }
        let Some(series) = series_by_pk.get(&row.scan_pk) else {
            continue;
        };
        if series_uid.is_some_and(|u| u != series.series_uid) {
            continue;
        }
        if series_matches(search, series) && instance_matches(search, &row) {
            matches.push((study, series.clone(), row));
        }
    }
    Ok(search
        .page(matches)
        .into_iter()
        .map(|(study, series, row)| {
            let mut out = Map::new();
            study_json(&mut out, &study);
            series_json(&mut out, &series);
            attr(&mut out, "00080016", "UI", &row.sop_class_uid);
            attr(&mut out, "00080018", "UI", &row.sop_instance_uid);
            attr_int(&mut out, "00200013", "IS", row.instance_number);
            attr_int(&mut out, "00280008", "IS", row.number_of_frames);
            attr(&mut out, "00083002", "UI", &row.transfer_syntax);
            attr(
                &mut out,
                "00081190",
                "UR",
                &base.instance(&study.study_uid, &series.series_uid, &row.sop_instance_uid),
            );
            Json::Object(out)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_ranges_and_lists() {
        assert!(text_matches("DOE*", "doe^john", true));
        assert!(text_matches("D?E^*", "DOE^JOHN", false));
        assert!(!text_matches("DOE", "DOE^JOHN", false));
        assert!(range_matches("20200101-20201231", "2020-06-01"));
        assert!(!range_matches("20200101-20201231", "2021-01-01"));
        assert!(range_matches("-20201231", "2019-01-01"));
        assert!(range_matches("20200101-", "2024-01-01"));
        assert!(range_matches("20200601", "2020-06-01"));
        assert!(uid_matches("1.2,1.3", "1.3"));
        assert_eq!(like_pattern("D?E*_1%\\"), "D_E%\\_1\\%\\\\");
        assert!(!uid_matches("1.2,1.3", "1.4"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let pairs = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert!(Search::parse(Level::Study, &pairs("PatientID", "x")).is_ok());
        assert!(Search::parse(Level::Study, &pairs("00100020", "x")).is_ok());
        assert!(Search::parse(Level::Study, &pairs("Bogus", "x")).is_err());
        assert!(Search::parse(Level::Study, &pairs("Modality", "CT")).is_err());
        assert!(Search::parse(Level::Study, &pairs("StudyDate", "2020x")).is_err());
        assert!(Search::parse(Level::Study, &pairs("limit", "ten")).is_err());
        assert!(Search::parse(Level::Study, &pairs("includefield", "Nonsense")).is_err());
        assert!(Search::parse(Level::Series, &pairs("includefield", "00081030,all")).is_ok());
    }
}
