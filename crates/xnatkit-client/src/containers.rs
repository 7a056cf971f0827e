//! XNAT's Container Service API as xnatkit's server and a real XNAT
//! answer it: commands and their wrappers, enabling a wrapper for the site
//! or a project, launches and bulk launches, containers with their
//! history, logs, kill, and an Event Service subscription that launches a
//! wrapper whenever a session is archived. The JSON types are
//! `xnatkit_model::container`'s, shared with the server.

use std::collections::BTreeMap;

use reqwest::Method;
use xnatkit_model::container::{
    BulkLaunchReport, Command, Container, LaunchReport, ProjectEnabledReport,
};

use crate::archive::seg;
use crate::client::{Request, RequestBody, XnatClient};
use crate::error::{ClientError, Result};

fn json_body(value: &impl serde::Serialize) -> Result<RequestBody> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| ClientError::Invalid(format!("cannot encode the request: {e}")))?;
    Ok(RequestBody::Bytes(bytes.into(), "application/json"))
}

impl XnatClient {
    async fn json_of<T: serde::de::DeserializeOwned>(&self, request: &Request) -> Result<T> {
        let response = self.send(request).await?;
        let url = response.url().to_string();
        let text = response.text().await.map_err(|e| ClientError::Transport {
            method: request.method.to_string(),
            url: url.clone(),
            reason: crate::client::describe_reqwest(&e),
        })?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            url,
            reason: format!("unexpected JSON for {} ({e})", request.what),
        })
    }

    /// `GET /xapi/commands`: every command with its wrappers.
    pub async fn commands(&self) -> Result<Vec<Command>> {
        self.json_of(&Request::get("/xapi/commands", "the command list"))
            .await
    }

    /// Enables or disables a wrapper for the site (`project` = `None`) or a
    /// project.
    pub async fn set_wrapper_enabled(
        &self,
        command_id: i64,
        wrapper_id: i64,
        project: Option<&str>,
        enabled: bool,
    ) -> Result<()> {
        let flag = if enabled { "enabled" } else { "disabled" };
        let path = match project {
            Some(p) => format!("/xapi/projects/{}/wrappers/{wrapper_id}/{flag}", seg(p)),
            None => format!("/xapi/commands/{command_id}/wrappers/{wrapper_id}/{flag}"),
        };
        self.send(&Request::new(
            Method::PUT,
            path,
            format!("wrapper {wrapper_id}"),
        ))
        .await?;
        Ok(())
    }

    /// Whether wrapper `wrapper_id` is enabled for the site and `project`.
    pub async fn wrapper_enabled_in(
        &self,
        project: &str,
        wrapper_id: i64,
    ) -> Result<ProjectEnabledReport> {
        self.json_of(&Request::get(
            format!(
                "/xapi/projects/{}/wrappers/{wrapper_id}/enabled",
                seg(project)
            ),
            format!("wrapper {wrapper_id} in project {project}"),
        ))
        .await
    }

    /// Sends a launch and reads its report; a refused launch (our server
    /// answers 4xx with a failure report; XNAT may answer 200 with one)
    /// becomes [`ClientError::Invalid`] with the server's reason.
    async fn launch_request<T: serde::de::DeserializeOwned>(&self, request: &Request) -> Result<T> {
        let response = self.send_raw(request).await?;
        let status = response.status();
        let url = response.url().to_string();
        let text = response.text().await.unwrap_or_default();
        if let Ok(report) = serde_json::from_str::<LaunchReport>(&text)
            && report.status == "failure"
        {
            return Err(ClientError::Invalid(format!(
                "the launch of {} was refused: {}",
                request.what,
                report.message.unwrap_or_else(|| format!("HTTP {status}"))
            )));
        }
        if !status.is_success() {
            return Err(ClientError::Http {
                method: "POST".to_owned(),
                url,
                status: status.as_u16(),
                message: text.lines().next().unwrap_or_default().to_owned(),
            });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            url,
            reason: format!("not a launch report ({e})"),
        })
    }

    /// Launches wrapper `wrapper_id` in `project` with `params` (input
    /// name → value; the root input's value is an object URI).
    pub async fn launch(
        &self,
        project: &str,
        wrapper_id: i64,
        params: &BTreeMap<String, String>,
    ) -> Result<LaunchReport> {
        let request = Request::new(
            Method::POST,
            format!(
                "/xapi/projects/{}/wrappers/{wrapper_id}/launch",
                seg(project)
            ),
            format!("wrapper {wrapper_id}"),
        )
        .body(json_body(params)?);
        self.launch_request(&request).await
    }

    /// Launches wrapper `wrapper_id` on every one of `targets` (object
    /// URIs) as the root input `root`.
    pub async fn bulk_launch(
        &self,
        project: &str,
        wrapper_id: i64,
        root: &str,
        targets: &[String],
        params: &BTreeMap<String, String>,
    ) -> Result<BulkLaunchReport> {
        let mut body = params.clone();
        body.insert(
            root.to_owned(),
            serde_json::to_string(targets)
                .map_err(|e| ClientError::Invalid(format!("cannot encode the targets: {e}")))?,
        );
        let request = Request::new(
            Method::POST,
            format!(
                "/xapi/projects/{}/wrappers/{wrapper_id}/root/{}/bulklaunch",
                seg(project),
                seg(root)
            ),
            format!("wrapper {wrapper_id}"),
        )
        .body(json_body(&body)?);
        self.launch_request(&request).await
    }

    /// Containers of `project`, or every container the user may see.
    pub async fn containers(&self, project: Option<&str>) -> Result<Vec<Container>> {
        let path = match project {
            Some(p) => format!("/xapi/projects/{}/containers", seg(p)),
            None => "/xapi/containers".to_owned(),
        };
        self.json_of(&Request::get(path, "the container list"))
            .await
    }

    /// The runs of `project` that have not ended yet (queued or running):
    /// the Container Service's `?nonfinalized=true`, one small answer
    /// however many runs the project has had.
    pub async fn unfinished_containers(&self, project: &str) -> Result<Vec<Container>> {
        self.json_of(
            &Request::get(
                format!("/xapi/projects/{}/containers", seg(project)),
                "the unfinished runs",
            )
            .query("nonfinalized", "true"),
        )
        .await
    }

    pub async fn container(&self, id: &str) -> Result<Container> {
        self.json_of(&Request::get(
            format!("/xapi/containers/{}", seg(id)),
            format!("container {id}"),
        ))
        .await
    }

    /// The `stdout` or `stderr` log of container `id`.
    pub async fn container_log(&self, id: &str, stream: &str) -> Result<String> {
        let request = Request::get(
            format!("/xapi/containers/{}/logs/{}", seg(id), seg(stream)),
            format!("the {stream} log of container {id}"),
        );
        let response = self.send(&request).await?;
        let url = response.url().to_string();
        response.text().await.map_err(|e| ClientError::Transport {
            method: "GET".to_owned(),
            url,
            reason: crate::client::describe_reqwest(&e),
        })
    }

    /// The `stream` log of container `id` written after `since` (the
    /// `timestamp` of the previous answer; none for the start). A
    /// `timestamp` of [`LOG_COMPLETE_TIMESTAMP`] means the run has ended and
    /// the content is the whole log.
    ///
    /// [`LOG_COMPLETE_TIMESTAMP`]: xnatkit_model::container::LOG_COMPLETE_TIMESTAMP
    pub async fn container_log_since(
        &self,
        id: &str,
        stream: &str,
        since: Option<&str>,
    ) -> Result<xnatkit_model::container::ContainerLogPoll> {
        let mut request = Request::get(
            format!("/xapi/containers/{}/logSince/{}", seg(id), seg(stream)),
            format!("the {stream} log of container {id}"),
        );
        if let Some(since) = since {
            request = request.query("since", since);
        }
        self.json_of(&request).await
    }

    pub async fn kill_container(&self, id: &str) -> Result<()> {
        self.send(&Request::new(
            Method::POST,
            format!("/xapi/containers/{}/kill", seg(id)),
            format!("container {id}"),
        ))
        .await?;
        Ok(())
    }

    /// Subscribes wrapper `wrapper_id` to every session archived into
    /// `project` (an Event Service subscription); returns `name:id`.
    pub async fn subscribe_on_archive(&self, project: &str, wrapper_id: i64) -> Result<String> {
        let body = serde_json::json!({
            "name": format!("{project}-on-archive-{wrapper_id}"),
            "active": true,
            "action-key": format!("org.nrg.containers.services.CommandActionProvider:{wrapper_id}"),
            "event-filter": {
                "event-type": "org.nrg.xnat.eventservice.events.SessionEvent",
                "status": "CREATED",
                "project-ids": [project],
            },
            "act-as-event-user": false,
        });
        let request = Request::new(
            Method::POST,
            format!("/xapi/projects/{}/events/subscription", seg(project)),
            format!("a subscription in project {project}"),
        )
        .body(json_body(&body)?);
        self.text(&request).await
    }
}
