//! The rest of the Container Service's container routes, for its history
//! table and log viewer: a page of the history (`POST /xapi/containers`,
//! filtered, sorted and paged), a log polled while it grows
//! (`logSince`), `finalize`, and the plugin version check.
//!
//! `logSince` differs from XNAT on purpose: XNAT's `timestamp` is the time
//! of the last line Docker printed plus one second, so lines written
//! within that second are lost; ours is a byte offset into the log
//! (`offset:N`), which loses nothing. Clients pass it back unread. A
//! datetime `since` from a client that makes its own is honoured as far
//! as a file without per-line times allows: the whole log if it changed
//! after that time, nothing if not.

use std::io::{Read, Seek, SeekFrom};

use xnatkit_engine::JobStatus;
use xnatkit_model::container::{
    Container, ContainerFilter, ContainerLogPoll, ContainerPageRequest, LOG_COMPLETE_TIMESTAMP,
    PluginVersionCheck,
};

use super::containers::{container_of, job, may, visible_jobs};
use super::worker;
use crate::access::Action;
use crate::archive::{Actor, Error, Result};
use crate::store::JobRow;

/// The most a single poll returns; the next poll continues from there.
const POLL_LIMIT: u64 = 1 << 20;

/// The newest log of container `id` after the poll token `since`.
pub async fn log_since(
    actor: &Actor<'_>,
    project: Option<&str>,
    id: &str,
    stream: &str,
    since: Option<&str>,
) -> Result<ContainerLogPoll> {
    if stream != "stdout" && stream != "stderr" {
        return Err(Error::NotFound(format!(
            "No log {stream}: use stdout or stderr"
        )));
    }
    let job = job(actor, project, id).await?;
    let path = worker::log_file(actor.state, job.id, stream);
    let terminal = JobStatus::parse(&job.status).is_some_and(JobStatus::is_terminal);
    let since = since.map(str::trim).filter(|s| !s.is_empty());
    let start = match since {
        None => SinceToken::Offset(0),
        Some(token) => SinceToken::parse(token).ok_or_else(|| {
            Error::Invalid(format!(
                "Could not parse timestamp {token}: pass back the timestamp of the previous answer, or a date such as 2026-12-06T10:00:00Z"
            ))
        })?,
    };
    let read = tokio::task::spawn_blocking(move || read_log(&path, &start, terminal))
        .await
        .map_err(|e| Error::Internal(format!("reading a log: {e}")))?;
    read.map_err(|e| Error::Internal(format!("reading the {stream} log of container {id}: {e}")))
}

/// Where a poll continues: a byte offset we handed out, or a client's time.
#[derive(Debug, PartialEq)]
enum SinceToken {
    Offset(u64),
    /// Unix milliseconds.
    Time(i64),
}

impl SinceToken {
    fn parse(token: &str) -> Option<Self> {
        if let Some(n) = token.strip_prefix("offset:") {
            return n.parse().ok().map(Self::Offset);
        }
        if let Ok(seconds) = token.parse::<i64>() {
            return Some(Self::Time(seconds.saturating_mul(1000)));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(token) {
            return Some(Self::Time(t.timestamp_millis()));
        }
        // XNAT's own form, `2026-12-06T10:00:00.000+0000`.
        chrono::DateTime::parse_from_str(token, "%Y-%m-%dT%H:%M:%S%.f%z")
            .ok()
            .map(|t| Self::Time(t.timestamp_millis()))
    }
}

fn read_log(
    path: &std::path::Path,
    since: &SinceToken,
    terminal: bool,
) -> std::io::Result<ContainerLogPoll> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if terminal {
        // Finished: the whole log, as XNAT reads its saved file.
        let mut content = Vec::new();
        if let Some(f) = file.as_mut() {
            f.read_to_end(&mut content)?;
        }
        return Ok(ContainerLogPoll {
            content: String::from_utf8_lossy(&content).into_owned(),
            from_file: file.is_some(),
            timestamp: LOG_COMPLETE_TIMESTAMP.to_owned(),
            bytes_read: -1,
        });
    }
    let Some(mut file) = file else {
        return Ok(live(String::new(), 0));
    };
    let len = file.metadata()?.len();
    let start = match since {
        SinceToken::Offset(n) => (*n).min(len),
        SinceToken::Time(ms) => {
            let modified = file
                .metadata()?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            if modified > *ms { 0 } else { len }
        }
    };
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(POLL_LIMIT).read_to_end(&mut bytes)?;
    // A character cut at the end of what was written so far waits for
    // the next poll rather than turning into a replacement character.
    let complete = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => bytes.len(),
    };
    bytes.truncate(complete);
    let next = start + complete as u64;
    Ok(live(String::from_utf8_lossy(&bytes).into_owned(), next))
}

fn live(content: String, next: u64) -> ContainerLogPoll {
    ContainerLogPoll {
        content,
        from_file: false,
        timestamp: format!("offset:{next}"),
        bytes_read: -1,
    }
}

/// `POST /xapi/containers/{id}/finalize`: outputs are filed by the run
/// itself as it ends, so finalizing an ended run has nothing left to do;
/// one still running is refused with what to do. Who may kill may ask.
pub async fn finalize(actor: &Actor<'_>, id: &str) -> Result<Container> {
    let user = actor.caller.require_user()?.username.clone();
    let job = job(actor, None, id).await?;
    if job.username != user && !may(actor, &job.project, Action::Edit).await? {
        return Err(Error::Forbidden(format!(
            "Forbidden: you may not finalize container {id} of project {}",
            job.project
        )));
    }
    if !JobStatus::parse(&job.status).is_some_and(JobStatus::is_terminal) {
        return Err(Error::Conflict(format!(
            "container {id} is {}; it is finalized (its outputs filed) when it ends — wait for it, or kill it",
            job.status
        )));
    }
    container_of(actor.state, &job).await
}

/// `GET /xapi/containers/version`.
pub fn version_check(xnat_version: &str) -> PluginVersionCheck {
    PluginVersionCheck {
        compatible: true,
        xnat_version_detected: Some(xnat_version.to_owned()),
        min_xnat_version_required: None,
        message: None,
    }
}

/// One page of the containers the caller may see, of `project` or all.
pub async fn page(
    actor: &Actor<'_>,
    project: Option<&str>,
    request: &ContainerPageRequest,
) -> Result<Vec<Container>> {
    let filters = request
        .filters
        .iter()
        .map(|(field, filter)| RowFilter::new(field, filter))
        .collect::<Result<Vec<_>>>()?;
    let sort = request.sort_col.as_deref().unwrap_or("timestamp");
    let key = SortKey::parse(sort)?;
    let descending = !request
        .sort_dir
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case("asc"));
    let size = usize::try_from(request.size.unwrap_or(50).clamp(1, 10_000)).unwrap_or(50);
    let page = usize::try_from(request.page.unwrap_or(1).max(1) - 1).unwrap_or(0);

    let mut rows = visible_jobs(actor, project, |job| filters.iter().all(|f| f.keeps(job))).await?;
    rows.sort_by(|a, b| {
        let order = key.compare(a, b).then(a.id.cmp(&b.id));
        if descending { order.reverse() } else { order }
    });
    let mut out = Vec::new();
    for job in rows.iter().skip(page.saturating_mul(size)).take(size) {
        out.push(container_of(actor.state, job).await?);
    }
    Ok(out)
}

/// The container fields the history table sorts and filters on, in the
/// JSON (kebab) and entity (camel) spellings.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SortKey {
    Id,
    Status,
    Project,
    User,
    Time,
    Command,
    Wrapper,
}

impl SortKey {
    fn parse(field: &str) -> Result<Self> {
        Ok(match field {
            "id" | "databaseId" | "container-id" | "containerId" => Self::Id,
            "status" => Self::Status,
            "project" => Self::Project,
            "user-id" | "userId" => Self::User,
            "timestamp" | "status-time" | "statusTime" | "created" => Self::Time,
            "command-id" | "commandId" => Self::Command,
            "wrapper-id" | "wrapperId" | "xnat-command-wrapper-id" => Self::Wrapper,
            other => {
                return Err(Error::Invalid(format!(
                    "containers cannot be sorted or filtered by {other}: use id, status, project, user-id, timestamp, command-id or wrapper-id"
                )));
            }
        })
    }

    fn text(self, job: &JobRow) -> String {
        match self {
            Self::Id => job.id.to_string(),
            Self::Status => job.status.clone(),
            Self::Project => job.project.clone(),
            Self::User => job.username.clone(),
            Self::Time => job.status_time.to_string(),
            Self::Command => job.command_id.to_string(),
            Self::Wrapper => job.wrapper_id.to_string(),
        }
    }

    fn compare(self, a: &JobRow, b: &JobRow) -> std::cmp::Ordering {
        match self {
            Self::Id => a.id.cmp(&b.id),
            Self::Time => a.status_time.cmp(&b.status_time),
            Self::Command => a.command_id.cmp(&b.command_id),
            Self::Wrapper => a.wrapper_id.cmp(&b.wrapper_id),
            _ => self.text(a).cmp(&self.text(b)),
        }
    }
}

/// One filter of the history table: `eq` (case-insensitive) or `like`
/// with `%` and `_` wildcards.
struct RowFilter {
    key: SortKey,
    like: bool,
    value: String,
}

impl RowFilter {
    fn new(field: &str, filter: &ContainerFilter) -> Result<Self> {
        let key = SortKey::parse(field)?;
        let (like, value) = match (&filter.like, &filter.value) {
            (Some(pattern), _) => (true, pattern.clone()),
            (None, Some(value)) => {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let operator = filter.operator.as_deref().unwrap_or("eq");
                match operator {
                    "eq" | "equals" => (false, text),
                    "like" | "ilike" => (true, text),
                    other => {
                        return Err(Error::Invalid(format!(
                            "filter on {field}: operator {other} is not supported; use eq or like"
                        )));
                    }
                }
            }
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "filter on {field} has no value: send {{\"operator\": \"eq\", \"value\": ...}}"
                )));
            }
        };
        Ok(Self {
            key,
            like,
            value: value.to_lowercase(),
        })
    }

    fn keeps(&self, job: &JobRow) -> bool {
        let text = self.key.text(job).to_lowercase();
        if self.like {
            like_matches(&self.value, &text)
        } else {
            text == self.value
        }
    }
}

/// SQL `LIKE` on characters: `%` any run, `_` one character; a pattern
/// without wildcards matches as a substring, as the table's text boxes mean.
fn like_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = if pattern.contains(['%', '_']) {
        pattern.chars().collect()
    } else {
        format!("%{pattern}%").chars().collect()
    };
    let text: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `%`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_as_sql_does() {
        assert!(like_matches("comp%", "complete"));
        assert!(like_matches("%fail%", "failed (rejected)"));
        assert!(like_matches("run", "running"), "no wildcard: substring");
        assert!(like_matches("r_n%", "running"));
        assert!(!like_matches("comp%", "killed"));
        assert!(!like_matches("a_", "a"));
    }

    #[test]
    fn since_tokens_are_our_offsets_or_a_clients_time() {
        assert_eq!(SinceToken::parse("offset:42"), Some(SinceToken::Offset(42)));
        assert_eq!(SinceToken::parse("10"), Some(SinceToken::Time(10_000)));
        assert_eq!(
            SinceToken::parse("1970-01-01T00:00:01.000+0000"),
            Some(SinceToken::Time(1000))
        );
        assert_eq!(
            SinceToken::parse("1970-01-01T00:00:02Z"),
            Some(SinceToken::Time(2000))
        );
        assert_eq!(SinceToken::parse("yesterday"), None);
    }

    #[test]
    fn a_growing_log_is_read_in_pieces_without_cutting_a_character() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout.log");
        let missing = read_log(&path, &SinceToken::Offset(0), false).unwrap();
        assert_eq!(
            (missing.content.as_str(), missing.timestamp.as_str()),
            ("", "offset:0")
        );
        // "é" is two bytes; the first arrives alone.
        std::fs::write(&path, b"line 1\n\xc3").unwrap();
        let first = read_log(&path, &SinceToken::Offset(0), false).unwrap();
        assert_eq!(first.content, "line 1\n");
        assert_eq!(first.timestamp, "offset:7");
        assert!(!first.from_file);
        std::fs::write(&path, "line 1\né line 2\n").unwrap();
        let second = read_log(&path, &SinceToken::Offset(7), false).unwrap();
        assert_eq!(second.content, "é line 2\n");
        let done = read_log(&path, &SinceToken::Offset(7), true).unwrap();
        assert_eq!(
            done.content, "line 1\né line 2\n",
            "a finished log is whole"
        );
        assert!(done.from_file);
        assert_eq!(done.timestamp, LOG_COMPLETE_TIMESTAMP);
        let later = read_log(&path, &SinceToken::Time(i64::MAX), false).unwrap();
        assert_eq!(later.content, "", "unchanged since the time asked");
    }
}
