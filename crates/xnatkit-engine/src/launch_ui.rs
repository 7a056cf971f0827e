//! The launch form of a wrapper (the Container Service's `LaunchUi`): its
//! inputs as trees and, when the launch names an object, the values the
//! resolution found for them — so a form (XNAT's launcher, a script)
//! shows what would run before it runs.
//!
//! The trees follow the Container Service: each external input is a
//! root with the derived inputs that come from it as children (nested as
//! deep as the derivations go); a command input that no wrapper input
//! feeds is a root of its own, the parameter a user types. Inputs that got
//! a value from the archive are `static` (not for the user to change).

use std::collections::BTreeMap;

use xnatkit_model::container::{
    Command, CommandInput, LaunchUi, LaunchUiInputTree, LaunchUiMeta, LaunchUiServer,
    LaunchUiValue, LaunchUiValueTree, Wrapper, WrapperInput,
};

use crate::resolve::ResolvedJob;

/// Which command and wrapper the form is for, with their ids.
pub struct LaunchUiFor<'a> {
    pub command: &'a Command,
    pub command_id: i64,
    pub wrapper: &'a Wrapper,
    pub wrapper_id: i64,
}

/// The form of `target`, with the values of `resolved` (a launch
/// resolved on an object) or none (no object named yet).
pub fn launch_ui(target: &LaunchUiFor<'_>, resolved: Option<&ResolvedJob>) -> LaunchUi {
    let wrapper = target.wrapper;
    let command = target.command;
    let values: BTreeMap<&str, (&str, bool)> = resolved
        .map(|job| {
            job.inputs
                .iter()
                .map(|i| (i.name.as_str(), (i.value.as_str(), i.sensitive)))
                .collect()
        })
        .unwrap_or_default();
    let root_label = resolved.map(|job| (job.root.uri.as_str(), job.root.label.as_str()));

    let mut input_config = Vec::new();
    let mut input_values = Vec::new();
    for input in &wrapper.external_inputs {
        input_config.push(wrapper_tree(wrapper, input, &values));
        input_values.push(wrapper_values(wrapper, input, &values, root_label));
    }
    // A derived input whose parent is not an input of the wrapper still
    // shows (at the top) rather than vanishing.
    for input in wrapper.derived_inputs.iter().filter(|d| {
        let parent = d.derived_from_wrapper_input.as_deref().unwrap_or_default();
        !wrapper
            .external_inputs
            .iter()
            .chain(&wrapper.derived_inputs)
            .any(|w| w.name == parent)
    }) {
        input_config.push(wrapper_tree(wrapper, input, &values));
        input_values.push(wrapper_values(wrapper, input, &values, root_label));
    }
    for input in command
        .inputs
        .iter()
        .filter(|c| !fed_by_wrapper(wrapper, c))
    {
        input_config.push(command_tree(input));
        let values = match values.get(input.name.as_str()) {
            Some((value, false)) => vec![LaunchUiValue {
                value: (*value).to_owned(),
                label: (*value).to_owned(),
                children: Vec::new(),
            }],
            // Sensitive values are not shown back.
            Some((_, true)) => Vec::new(),
            None => input
                .default_value
                .iter()
                .map(|d| LaunchUiValue {
                    value: d.clone(),
                    label: d.clone(),
                    children: Vec::new(),
                })
                .collect(),
        };
        input_values.push(LaunchUiValueTree {
            name: input.name.clone(),
            values,
        });
    }

    LaunchUi {
        meta: LaunchUiMeta {
            command_id: target.command_id,
            command_name: command.name.clone(),
            command_label: command.label.clone(),
            command_description: command.description.clone(),
            wrapper_id: target.wrapper_id,
            wrapper_name: wrapper.name.clone(),
            wrapper_label: wrapper.label.clone(),
            wrapper_description: wrapper.description.clone(),
            image_name: command.image.clone().unwrap_or_default(),
            image_type: command.kind.clone().unwrap_or_default(),
        },
        container_server_config: LaunchUiServer::default(),
        input_config,
        input_values,
    }
}

/// The form of `target` on an object whose inputs do not resolve yet
/// (a required parameter not given, no resource matching): the root input
/// shows the object, `message` says what is missing, the rest stays open.
pub fn launch_ui_unresolved(
    target: &LaunchUiFor<'_>,
    root: (&str, &str),
    message: &str,
) -> LaunchUi {
    let mut ui = launch_ui(target, None);
    let Some(root_name) = crate::resolve::root_input(target.wrapper).map(|r| r.name.clone()) else {
        return ui;
    };
    if let Some(tree) = ui.input_config.iter_mut().find(|t| t.name == root_name) {
        tree.input_type = "static".to_owned();
        tree.derived_value_message = Some(message.to_owned());
    }
    if let Some(values) = ui.input_values.iter_mut().find(|v| v.name == root_name) {
        values.values = vec![LaunchUiValue {
            value: root.0.to_owned(),
            label: root.1.to_owned(),
            children: Vec::new(),
        }];
    }
    ui
}

fn fed_by_wrapper(wrapper: &Wrapper, input: &CommandInput) -> bool {
    wrapper
        .external_inputs
        .iter()
        .chain(&wrapper.derived_inputs)
        .any(|w| w.provides_value_for_command_input.as_deref() == Some(input.name.as_str()))
}

fn children_of<'a>(
    wrapper: &'a Wrapper,
    parent: &'a str,
) -> impl Iterator<Item = &'a WrapperInput> {
    wrapper
        .derived_inputs
        .iter()
        .filter(move |d| d.derived_from_wrapper_input.as_deref() == Some(parent))
}

fn wrapper_tree(
    wrapper: &Wrapper,
    input: &WrapperInput,
    values: &BTreeMap<&str, (&str, bool)>,
) -> LaunchUiInputTree {
    let resolved = values
        .get(input.name.as_str())
        .is_some_and(|(v, _)| !v.is_empty());
    let input_type = if input.kind == "boolean" {
        "boolean"
    } else if resolved {
        "static"
    } else {
        "text"
    };
    LaunchUiInputTree {
        name: input.name.clone(),
        label: input.label.clone(),
        description: input.description.clone(),
        advanced: false,
        required: input.required.unwrap_or(false),
        user_settable: input.user_settable.unwrap_or(true),
        multiple: input.multiple.unwrap_or(false),
        input_type: input_type.to_owned(),
        derived_value_info: input
            .derived_from_wrapper_input
            .as_ref()
            .map(|parent| derived_info(input, parent)),
        derived_value_message: None,
        select_values: Vec::new(),
        children: children_of(wrapper, &input.name)
            .map(|child| wrapper_tree(wrapper, child, values))
            .collect(),
    }
}

fn derived_info(input: &WrapperInput, parent: &str) -> String {
    let mut info = format!("derived from {parent}");
    if let Some(property) = &input.derived_from_xnat_object_property {
        info.push_str(&format!(" ({property})"));
    }
    if let Some(matcher) = &input.matcher {
        info.push_str(&format!(" via matcher {matcher}"));
    }
    info
}

fn wrapper_values(
    wrapper: &Wrapper,
    input: &WrapperInput,
    values: &BTreeMap<&str, (&str, bool)>,
    root: Option<(&str, &str)>,
) -> LaunchUiValueTree {
    let values_here = match values.get(input.name.as_str()) {
        Some((value, _)) if !value.is_empty() => {
            let label = match root {
                Some((uri, label)) if uri == *value => label.to_owned(),
                _ => (*value).to_owned(),
            };
            vec![LaunchUiValue {
                value: (*value).to_owned(),
                label,
                children: children_of(wrapper, &input.name)
                    .map(|child| wrapper_values(wrapper, child, values, root))
                    .collect(),
            }]
        }
        _ => Vec::new(),
    };
    LaunchUiValueTree {
        name: input.name.clone(),
        values: values_here,
    }
}

fn command_tree(input: &CommandInput) -> LaunchUiInputTree {
    let input_type = match input.kind.as_str() {
        "boolean" => "boolean",
        "select-one" => "select-one",
        "select-many" => "select-many",
        "file" => "file",
        _ if input.sensitive.unwrap_or(false) => "password",
        _ => "text",
    };
    LaunchUiInputTree {
        name: input.name.clone(),
        label: None,
        description: input.description.clone(),
        advanced: false,
        required: input.required,
        user_settable: true,
        multiple: input.kind == "select-many",
        input_type: input_type.to_owned(),
        derived_value_info: None,
        derived_value_message: None,
        select_values: input.select_values.clone(),
        children: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{XnatObject, XnatResource, resolve};

    fn command() -> Command {
        serde_json::from_value(serde_json::json!({
            "name": "tool", "type": "xnatkit-command-line",
            "command-line": "run #IN# #LEVEL# #SECRET#",
            "mounts": [{"name": "in", "path": "/input"}, {"name": "out", "path": "/output", "writable": true}],
            "inputs": [
                {"name": "LEVEL", "type": "select-one", "select-values": ["low", "high"], "default-value": "low"},
                {"name": "SECRET", "type": "string", "sensitive": true},
                {"name": "IN", "type": "string"}
            ],
            "outputs": [{"name": "o", "mount": "out"}],
            "xnat": [{
                "name": "tool-scan", "contexts": ["xnat:imageScanData"],
                "external-inputs": [{"name": "scan", "type": "Scan", "required": true}],
                "derived-inputs": [{
                    "name": "dicom", "type": "Resource", "derived-from-wrapper-input": "scan",
                    "matcher": "@.label == 'DICOM'", "provides-files-for-command-mount": "in",
                    "provides-value-for-command-input": "IN"
                }],
                "output-handlers": [{"name": "h", "type": "Resource", "accepts-command-output": "o",
                                     "as-a-child-of": "scan", "label": "OUT"}]
            }]
        }))
        .unwrap()
    }

    fn scan() -> XnatObject {
        XnatObject {
            kind: "Scan".into(),
            xsi_type: "xnat:mrScanData".into(),
            id: "2".into(),
            label: "2".into(),
            uri: "/data/experiments/E1/scans/2".into(),
            project: "P".into(),
            session_id: "E1".into(),
            scan_type: "T1".into(),
            resources: vec![XnatResource {
                label: "DICOM".into(),
                uri: "/data/experiments/E1/scans/2/resources/DICOM".into(),
                directory: "/archive/P/E1/SCANS/2/DICOM".into(),
            }],
            children: Vec::new(),
        }
    }

    fn target<'a>(command: &'a Command) -> LaunchUiFor<'a> {
        LaunchUiFor {
            command,
            command_id: 7,
            wrapper: &command.xnat[0],
            wrapper_id: 9,
        }
    }

    #[test]
    fn without_an_object_the_inputs_are_open() {
        let command = command();
        let ui = launch_ui(&target(&command), None);
        assert_eq!(ui.meta.command_id, 7);
        assert_eq!(ui.meta.wrapper_name, "tool-scan");
        let names: Vec<_> = ui.input_config.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["scan", "LEVEL", "SECRET"], "IN is fed by dicom");
        assert_eq!(ui.input_config[0].input_type, "text");
        assert!(ui.input_config[0].required);
        assert_eq!(ui.input_config[0].children[0].name, "dicom");
        assert_eq!(ui.input_config[1].input_type, "select-one");
        assert_eq!(ui.input_config[1].select_values, ["low", "high"]);
        assert_eq!(ui.input_config[2].input_type, "password");
        assert!(ui.input_values[0].values.is_empty());
        assert_eq!(ui.input_values[1].values[0].value, "low", "the default");
    }

    #[test]
    fn with_an_object_the_resolved_values_show_and_are_static() {
        let command = command();
        let mut params = BTreeMap::new();
        params.insert("LEVEL".to_owned(), "high".to_owned());
        params.insert("SECRET".to_owned(), "hunter2".to_owned());
        let job = resolve(&command, &command.xnat[0], &scan(), &params).unwrap();
        let ui = launch_ui(&target(&command), Some(&job));
        assert_eq!(ui.input_config[0].input_type, "static");
        assert_eq!(ui.input_config[0].children[0].input_type, "static");
        let root = &ui.input_values[0].values[0];
        assert_eq!(root.value, "/data/experiments/E1/scans/2");
        assert_eq!(root.label, "2");
        assert_eq!(
            root.children[0].values[0].value,
            "/data/experiments/E1/scans/2/resources/DICOM"
        );
        assert_eq!(ui.input_values[1].values[0].value, "high");
        assert!(
            ui.input_values[2].values.is_empty(),
            "a sensitive value is not shown back"
        );
        let json = serde_json::to_value(&ui).unwrap();
        assert!(json["container-server-config"].is_object());
        assert_eq!(json["input-config"][0]["input-type"], "static");
        assert_eq!(json["input-values"][0]["values"][0]["label"], "2");
    }

    #[test]
    fn an_object_that_does_not_resolve_keeps_the_form_open_with_the_reason() {
        let command = command();
        let ui = launch_ui_unresolved(
            &target(&command),
            ("/data/experiments/E1/scans/2", "2"),
            "no resource matches",
        );
        assert_eq!(ui.input_config[0].input_type, "static");
        assert_eq!(
            ui.input_config[0].derived_value_message.as_deref(),
            Some("no resource matches")
        );
        assert_eq!(ui.input_values[0].values[0].label, "2");
        assert!(ui.input_values[0].values[0].children.is_empty());
    }
}
