//! The archive email: when a session is archived, the project's recipients
//! get its summary (project, subject, label, date, scans) and a link to its
//! page. Called from the same place as the engine's on-archive
//! subscriptions (`import::archive::archive_study`, which every archiving
//! path goes through), so no route sends its own.
//!
//! Off unless `serve --smtp` is given. Sending runs in its own task: a slow
//! or refusing mail server never delays or fails an archive; a failure is
//! one log line. Recipients are stored per project and set by its owners
//! ([`set_recipients`], from the Manage tab and
//! `PUT /xapi/projects/{project}/archive-email`).

use std::fmt;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use xnatkit_model::encode_segment;

use crate::access::Action;
use crate::archive::{Actor, Error, Result, project_access};
use crate::state::AppState;

/// Most recipients one project may have.
pub const MAX_RECIPIENTS: usize = 50;

/// The mail server of `serve --smtp`.
#[derive(Clone)]
pub struct SmtpConfig {
    /// `smtp://host:port` (plain, or `?tls=required` for STARTTLS) or
    /// `smtps://host:port` (TLS from the start), as `lettre` reads it.
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The `From:` address.
    pub from: String,
}

// By hand: the password must never reach a log through `{:?}`.
impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("from", &self.from)
            .finish()
    }
}

impl SmtpConfig {
    /// Checks the URL and the sender address at start-up, so a typo stops
    /// `serve` rather than every later email.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.from.parse::<Mailbox>().map_err(|e| {
            format!(
                "--smtp-from {:?} is not an email address ({e}); pass e.g. xnat@example.org",
                self.from
            )
        })?;
        self.transport().map(|_| ())
    }

    fn transport(&self) -> std::result::Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url).map_err(|e| {
            format!(
                "--smtp {:?} is not an SMTP URL ({e}); pass smtp://host:port or smtps://host:port",
                self.url
            )
        })?;
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

/// The project's recipients; project owners only (the addresses are
/// personal data, not project data).
pub async fn recipients(actor: &Actor<'_>, project: &str) -> Result<Vec<String>> {
    let id = require_manage(actor, project).await?;
    Ok(actor.state.store().archive_email_recipients(&id).await?)
}

/// Replaces the project's recipients by `addresses` (trimmed, duplicates
/// dropped); project owners only. Returns the stored list.
pub async fn set_recipients(
    actor: &Actor<'_>,
    project: &str,
    addresses: &[String],
) -> Result<Vec<String>> {
    let id = require_manage(actor, project).await?;
    let mut checked: Vec<String> = Vec::new();
    for address in addresses.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        let parsed: lettre::Address = address.parse().map_err(|_| {
            Error::Invalid(format!(
                "{address:?} is not an email address; write one address like name@example.org per line"
            ))
        })?;
        let parsed = parsed.to_string();
        if !checked.contains(&parsed) {
            checked.push(parsed);
        }
    }
    if checked.len() > MAX_RECIPIENTS {
        return Err(Error::Invalid(format!(
            "{} recipients is too many; a project may have at most {MAX_RECIPIENTS} (use a mailing list)",
            checked.len()
        )));
    }
    checked.sort();
    let store = actor.state.store();
    store.set_archive_email_recipients(&id, &checked).await?;
    Ok(checked)
}

/// Splits a text of addresses (one per line, or separated by commas,
/// semicolons or spaces) into addresses.
pub fn split_addresses(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn require_manage(actor: &Actor<'_>, project: &str) -> Result<String> {
    let found = actor
        .state
        .store()
        .project(project)
        .await?
        .ok_or_else(|| Error::not_found(format!("project {project}")))?;
    project_access(actor, &found).await?.check(
        Action::Manage,
        &format!("the archive email of project {}", found.id),
    )?;
    Ok(found.id)
}

/// What one archive email says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedSession {
    pub project: String,
    pub subject: String,
    pub label: String,
    pub date: String,
    pub scans: usize,
    /// The session's page.
    pub link: String,
}

impl ArchivedSession {
    pub fn subject_line(&self) -> String {
        format!(
            "[{}] session {} archived ({} scans)",
            self.project, self.label, self.scans
        )
    }

    pub fn body(&self) -> String {
        let date = if self.date.is_empty() {
            "(not recorded)"
        } else {
            &self.date
        };
        format!(
            "A session was archived.\n\n\
             Project: {}\nSubject: {}\nSession: {}\nDate:    {date}\nScans:   {}\n\n\
             Open it: {}\n",
            self.project, self.subject, self.label, self.scans, self.link
        )
    }
}

/// The page of a session below `site_url` (no trailing slash).
pub fn session_link(site_url: &str, project: &str, subject: &str, label: &str) -> String {
    format!(
        "{}/app/projects/{}/subjects/{}/experiments/{}",
        site_url.trim_end_matches('/'),
        encode_segment(project),
        encode_segment(subject),
        encode_segment(label)
    )
}

/// Sends the archive email of a session that was just archived, in its own
/// task. Never fails and never waits for the mail server.
pub async fn session_archived(state: &AppState, project: &str, label: &str) {
    let Some(smtp) = state.config().smtp.clone() else {
        return;
    };
    let summary = match summarize(state, project, label).await {
        Ok(Some(found)) => found,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(
                "archive email for session {label} of project {project} not sent: {err}"
            );
            return;
        }
    };
    let (recipients, summary) = summary;
    let project = project.to_owned();
    let label = label.to_owned();
    state.spawn(async move {
        if let Err(err) = send(&smtp, &recipients, &summary).await {
            tracing::warn!(
                "archive email for session {label} of project {project} not sent to {} recipient(s): {err}",
                recipients.len()
            );
        }
    });
}

async fn summarize(
    state: &AppState,
    project: &str,
    label: &str,
) -> Result<Option<(Vec<String>, ArchivedSession)>> {
    let store = state.store();
    let recipients = store.archive_email_recipients(project).await?;
    if recipients.is_empty() {
        return Ok(None);
    }
    let Some(session) = store.experiment_by_label(project, label).await? else {
        return Ok(None);
    };
    let subject = store
        .subject_by_id(&session.subject_id)
        .await?
        .map(|s| s.label)
        .unwrap_or_else(|| session.subject_id.clone());
    let scans = store.scans(&session.id).await?.len();
    let site = state.config().site_url.clone().unwrap_or_default();
    let link = session_link(&site, project, &subject, &session.label);
    Ok(Some((
        recipients,
        ArchivedSession {
            project: project.to_owned(),
            subject,
            label: session.label,
            date: session.attrs.date,
            scans,
            link,
        },
    )))
}

async fn send(
    smtp: &SmtpConfig,
    recipients: &[String],
    summary: &ArchivedSession,
) -> std::result::Result<(), String> {
    let from: Mailbox = smtp.from.parse().map_err(|e| format!("sender: {e}"))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(summary.subject_line());
    for to in recipients {
        let mailbox: Mailbox = to.parse().map_err(|e| format!("recipient {to}: {e}"))?;
        builder = builder.to(mailbox);
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(summary.body())
        .map_err(|e| e.to_string())?;
    smtp.transport()?
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_escape_labels() {
        assert_eq!(
            session_link("http://h:1/", "P 1", "S/1", "E"),
            "http://h:1/app/projects/P%201/subjects/S%2F1/experiments/E"
        );
    }

    #[test]
    fn addresses_split_on_lines_commas_and_spaces() {
        assert_eq!(
            split_addresses("a@x.org,\nb@y.org; c@z.org \n"),
            vec!["a@x.org", "b@y.org", "c@z.org"]
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let config = SmtpConfig {
            url: "smtp://h:25".into(),
            user: Some("u".into()),
            password: Some("s3cret".into()),
            from: "x@y.org".into(),
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
