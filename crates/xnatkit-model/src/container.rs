//! XNAT Container Service JSON: the command JSON (commands, wrappers,
//! inputs, outputs, output handlers) and the run-side documents
//! (`LaunchReport`, the container record with its history, enablement
//! reports). Shared so that our server's answers and our client's reads
//! are one definition; field names follow the Container Service's own
//! Jackson names (kebab-case). Unknown fields are kept in `extra`, so a
//! command registered by a provisioning script survives a round trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// XNAT writes `default-value`, `true-value` etc. as strings, but command
/// files in the wild also carry bare booleans and numbers there.
fn loose_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// A command: what to run, with which inputs, mounts and outputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Command {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// `docker` at XNAT; see `xnatkit_engine::validate` for ours.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub command_line: String,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    #[serde(default)]
    pub inputs: Vec<CommandInput>,
    #[serde(default)]
    pub outputs: Vec<CommandOutput>,
    /// The wrappers.
    #[serde(default)]
    pub xnat: Vec<Wrapper>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mount {
    pub name: String,
    #[serde(default)]
    pub writable: bool,
    #[serde(default)]
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandInput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default = "string_type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(
        default,
        deserialize_with = "loose_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line_flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line_separator: Option<String>,
    #[serde(
        default,
        deserialize_with = "loose_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub true_value: Option<String>,
    #[serde(
        default,
        deserialize_with = "loose_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub false_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select_values: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn string_type() -> String {
    "string".to_owned()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandOutput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// XNAT's default is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    pub mount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
}

/// A wrapper (`xnat[]`): how a command meets the archive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Wrapper {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub contexts: Vec<String>,
    #[serde(default)]
    pub external_inputs: Vec<WrapperInput>,
    #[serde(default)]
    pub derived_inputs: Vec<WrapperInput>,
    #[serde(default)]
    pub output_handlers: Vec<OutputHandler>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WrapperInput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Project`, `Session`, `Scan`, `Resource`, ... or a plain value type.
    #[serde(rename = "type", default = "string_type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<String>,
    #[serde(
        default,
        deserialize_with = "loose_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provides_value_for_command_input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provides_files_for_command_mount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_settable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_children: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from_wrapper_input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from_xnat_object_property: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_setup_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutputHandler {
    pub name: String,
    /// `Resource`, `Assessor` or `Scan`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xsi_type: Option<String>,
    pub accepts_command_output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_wrapup_command: Option<String>,
    /// The legacy key `as-a-child-of-wrapper-input` is read as this one.
    #[serde(alias = "as-a-child-of-wrapper-input")]
    pub as_a_child_of: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// `LaunchReport`: the answer to a launch. `workflow-id` is a number on
/// our server (the workflow row exists before the answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LaunchReport {
    pub status: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<Value>,
    /// Ours: the container (job) id, so a client need not correlate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The answer to a bulk launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BulkLaunchReport {
    #[serde(default)]
    pub bulk_launch_id: String,
    #[serde(default)]
    pub pipeline_name: String,
    #[serde(default)]
    pub successes: Vec<LaunchReport>,
    #[serde(default)]
    pub failures: Vec<LaunchReport>,
}

/// One entry of a container's `history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ContainerHistory {
    #[serde(default)]
    pub id: i64,
    pub status: String,
    /// `system`, `event`, `service` or `user`.
    #[serde(default)]
    pub entity_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// `yyyy-MM-dd'T'HH:mm:ss.SSSZ`, as the Container Service's DTO writes it.
    pub time_recorded: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(rename = "exitCode", default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<String>,
}

/// A container (one run of a wrapper on one object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Container {
    pub id: i64,
    pub command_id: i64,
    pub wrapper_id: i64,
    pub status: String,
    /// Same format as [`ContainerHistory::time_recorded`].
    pub status_time: String,
    /// The backend's id; ours is `xnatkit-<id>`.
    #[serde(default)]
    pub container_id: String,
    pub workflow_id: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub project: String,
    /// `local` (the pool) or the executor's name.
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub docker_image: String,
    #[serde(default)]
    pub command_line: String,
    #[serde(default)]
    pub subtype: String,
    #[serde(default)]
    pub parent_source_object_name: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub inputs: Vec<ContainerInput>,
    #[serde(default)]
    pub outputs: Vec<ContainerOutput>,
    #[serde(default)]
    pub history: Vec<ContainerHistory>,
    #[serde(default)]
    pub log_paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ContainerInput {
    /// `wrapper-external`, `wrapper-derived` or `command`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ContainerOutput {
    pub name: String,
    #[serde(default, rename = "fromCommandOutput")]
    pub from_command_output: String,
    #[serde(default, rename = "fromOutputHandler")]
    pub from_output_handler: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub mount: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub handled_by: String,
    #[serde(default)]
    pub via_wrapup_container: String,
    #[serde(default)]
    pub created: Option<String>,
}

/// `GET /xapi/commands/available` rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandSummaryForContext {
    pub command_id: i64,
    pub command_name: String,
    #[serde(default)]
    pub command_description: String,
    pub wrapper_id: i64,
    pub wrapper_name: String,
    #[serde(default)]
    pub wrapper_description: String,
    #[serde(default)]
    pub wrapper_contexts: Vec<String>,
    #[serde(default)]
    pub image_name: String,
    #[serde(default)]
    pub image_type: String,
    pub enabled: bool,
    #[serde(default)]
    pub root_element_name: String,
}

/// `GET /xapi/projects/P/.../enabled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProjectEnabledReport {
    pub enabled_for_site: bool,
    pub enabled_for_project: bool,
    pub project: String,
}

/// `GET .../wrappers/{id}/launch?{root}=...`: what a launch form shows —
/// the Container Service's `LaunchUi`: the wrapper, its inputs as trees
/// (a wrapper input with the inputs derived from it as children; command
/// inputs no wrapper input feeds at the top) and the values they resolve
/// to for the object named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LaunchUi {
    pub meta: LaunchUiMeta,
    pub container_server_config: LaunchUiServer,
    pub input_config: Vec<LaunchUiInputTree>,
    pub input_values: Vec<LaunchUiValueTree>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LaunchUiMeta {
    pub command_id: i64,
    pub command_name: String,
    #[serde(default)]
    pub command_label: Option<String>,
    #[serde(default)]
    pub command_description: Option<String>,
    pub wrapper_id: i64,
    pub wrapper_name: String,
    #[serde(default)]
    pub wrapper_label: Option<String>,
    #[serde(default)]
    pub wrapper_description: Option<String>,
    #[serde(default)]
    pub image_name: String,
    #[serde(default)]
    pub image_type: String,
}

/// Docker Swarm placement choices; none here (no container runtime).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LaunchUiServer {
    #[serde(default)]
    pub swarm_constraints: Option<Vec<Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LaunchUiInputTree {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub advanced: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub user_settable: bool,
    #[serde(default)]
    pub multiple: bool,
    /// `text`, `password`, `boolean`, `select-one`, `select-many`,
    /// `static` (resolved from the object, not to be changed), `file`.
    pub input_type: String,
    #[serde(default)]
    pub derived_value_info: Option<String>,
    #[serde(default)]
    pub derived_value_message: Option<String>,
    #[serde(default)]
    pub select_values: Vec<String>,
    #[serde(default)]
    pub children: Vec<LaunchUiInputTree>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchUiValueTree {
    pub name: String,
    #[serde(default)]
    pub values: Vec<LaunchUiValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchUiValue {
    pub value: String,
    pub label: String,
    #[serde(default)]
    pub children: Vec<LaunchUiValueTree>,
}

/// `GET /xapi/containers/{id}/logSince/{stdout|stderr}?since=`: the log
/// written since the `timestamp` of the previous answer. `timestamp` is
/// `-1` once the container is finished and the content is the whole log
/// (`fromFile`); a poller stops there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerLogPoll {
    pub content: String,
    #[serde(rename = "fromFile")]
    pub from_file: bool,
    pub timestamp: String,
    #[serde(rename = "bytesRead")]
    pub bytes_read: i64,
}

/// `ContainerLogPoll::timestamp` of a finished container's log.
pub const LOG_COMPLETE_TIMESTAMP: &str = "-1";

/// `GET /xapi/containers/version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginVersionCheck {
    pub compatible: bool,
    #[serde(default)]
    pub xnat_version_detected: Option<String>,
    #[serde(default)]
    pub min_xnat_version_required: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `POST /xapi/containers`: one page of the container history, as XNAT's
/// history table asks for it (the NRG framework's `PaginatedRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerPageRequest {
    #[serde(default)]
    pub id: Option<String>,
    /// A container field (`id`, `status`, `project`, `user-id`,
    /// `status-time`/`timestamp`, `command-id`, `wrapper-id`); default `timestamp`.
    #[serde(default)]
    pub sort_col: Option<String>,
    /// `asc` or `desc` (the default).
    #[serde(default)]
    pub sort_dir: Option<String>,
    /// 1-based; default 1.
    #[serde(default)]
    pub page: Option<i64>,
    /// Default 50.
    #[serde(default)]
    pub size: Option<i64>,
    /// Field → filter, e.g. `{"project": {"operator": "eq", "value": "P", "backend": "hibernate"}}`.
    #[serde(default)]
    pub filters: BTreeMap<String, ContainerFilter>,
}

/// One filter of a [`ContainerPageRequest`]: `operator` `eq` (the
/// default) or `like` (`%` wildcards, case-insensitive) on `value`; the
/// history table's text boxes send `like` directly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerFilter {
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub like: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `/xapi/commandeventmapping`: the Container Service's legacy Command
/// Automation (before XNAT 1.8's Event Service) — run a wrapper whenever a
/// session (`SessionArchived`) or a scan (`ScanArchived`) is archived into
/// a project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandEventMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default)]
    pub command_id: i64,
    /// The wrapper's name.
    #[serde(default)]
    pub xnat_command_wrapper: String,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `GET|POST /xapi/[projects/{p}/]wrappers/{id}/config`: the Container
/// Service's `CommandConfiguration` — per-site or per-project defaults for
/// a wrapper's inputs (by wrapper or command input name) and the labels of
/// its outputs (by output handler name). A GET answers the command's own
/// values with the site's and then the project's settings laid over them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandConfiguration {
    #[serde(default)]
    pub inputs: BTreeMap<String, CommandInputConfiguration>,
    #[serde(default)]
    pub outputs: BTreeMap<String, CommandOutputConfiguration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandInputConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(
        default,
        deserialize_with = "loose_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_settable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandOutputConfiguration {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A timestamp in the Container Service's form (`2026-12-05T11:20:00.123+0000`).
pub fn timestamp_text(seconds: i64, millis: u32, offset: &str) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}{offset}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Epoch milliseconds in the Container Service's form, in UTC.
pub fn timestamp_ms(ms: i64) -> String {
    timestamp_text(
        ms.div_euclid(1000),
        u32::try_from(ms.rem_euclid(1000)).unwrap_or(0),
        "+0000",
    )
}

/// Statuses of a container that no longer change.
pub const TERMINAL_STATUSES: [&str; 3] = ["Complete", "Failed", "Killed"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_the_dto_form() {
        assert_eq!(timestamp_ms(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(
            timestamp_ms(1_764_933_600_123),
            "2025-12-05T11:20:00.123+0000"
        );
        assert_eq!(
            timestamp_ms(951_782_400_000),
            "2000-02-29T00:00:00.000+0000"
        );
    }

    #[test]
    fn legacy_child_key_reads_as_the_current_one() {
        let handler: OutputHandler = serde_json::from_str(
            r#"{"name":"h","type":"Resource","accepts-command-output":"o","as-a-child-of-wrapper-input":"scan","label":"NIFTI"}"#,
        )
        .unwrap();
        assert_eq!(handler.as_a_child_of, "scan");
        let back = serde_json::to_value(&handler).unwrap();
        assert_eq!(back["as-a-child-of"], "scan");
    }

    #[test]
    fn unknown_fields_and_loose_defaults_survive() {
        let cmd: Command = serde_json::from_str(
            r#"{"name":"c","type":"xnatkit","command-line":"x","reserve-memory":1000,
               "inputs":[{"name":"b","type":"boolean","default-value":false}]}"#,
        )
        .unwrap();
        assert_eq!(cmd.inputs[0].default_value.as_deref(), Some("false"));
        assert_eq!(cmd.extra["reserve-memory"], 1000);
        let back = serde_json::to_value(&cmd).unwrap();
        assert_eq!(back["reserve-memory"], 1000);
    }
}
