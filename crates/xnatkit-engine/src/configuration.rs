//! Wrapper configurations (the Container Service's `CommandConfiguration`):
//! what a site or a project sets over a command's own input defaults,
//! matchers and output labels, and the command as configured — which is
//! what a launch resolves, so a project's `default-value` fills an input
//! its users leave out and its output `label` names the resource a run
//! files.

use xnatkit_model::container::{
    Command, CommandConfiguration, CommandInputConfiguration, CommandOutputConfiguration, Wrapper,
};

/// The configuration a command and wrapper carry themselves.
pub fn base(command: &Command, wrapper: &Wrapper) -> CommandConfiguration {
    let mut config = CommandConfiguration::default();
    for input in wrapper
        .external_inputs
        .iter()
        .chain(&wrapper.derived_inputs)
    {
        config.inputs.insert(
            input.name.clone(),
            CommandInputConfiguration {
                description: input.description.clone(),
                kind: Some(input.kind.clone()),
                default_value: input.default_value.clone(),
                matcher: input.matcher.clone(),
                user_settable: input.user_settable,
                advanced: None,
                required: input.required,
            },
        );
    }
    for input in &command.inputs {
        config.inputs.insert(
            input.name.clone(),
            CommandInputConfiguration {
                description: input.description.clone(),
                kind: Some(input.kind.clone()),
                default_value: input.default_value.clone(),
                matcher: None,
                user_settable: None,
                advanced: None,
                required: Some(input.required),
            },
        );
    }
    for handler in &wrapper.output_handlers {
        config.outputs.insert(
            handler.name.clone(),
            CommandOutputConfiguration {
                kind: Some(handler.kind.clone()),
                label: handler.label.clone(),
            },
        );
    }
    config
}

/// Checks that `config` only names inputs and outputs the wrapper has.
pub fn validate(
    command: &Command,
    wrapper: &Wrapper,
    config: &CommandConfiguration,
) -> Result<(), String> {
    let known = base(command, wrapper);
    for name in config.inputs.keys() {
        if !known.inputs.contains_key(name) {
            return Err(format!(
                "wrapper {} has no input {name}; its inputs are {}",
                wrapper.name,
                known.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for name in config.outputs.keys() {
        if !known.outputs.contains_key(name) {
            return Err(format!(
                "wrapper {} has no output handler {name}; its handlers are {}",
                wrapper.name,
                known.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(())
}

/// `over` laid on `under`: each value `over` sets wins.
pub fn overlay(under: &mut CommandConfiguration, over: &CommandConfiguration) {
    for (name, input) in &over.inputs {
        let slot = under.inputs.entry(name.clone()).or_default();
        macro_rules! take {
            ($($field:ident),*) => {$(
                if input.$field.is_some() {
                    slot.$field = input.$field.clone();
                }
            )*};
        }
        take!(
            description,
            kind,
            default_value,
            matcher,
            user_settable,
            advanced,
            required
        );
    }
    for (name, output) in &over.outputs {
        let slot = under.outputs.entry(name.clone()).or_default();
        if output.label.is_some() {
            slot.label = output.label.clone();
        }
        if output.kind.is_some() {
            slot.kind = output.kind.clone();
        }
    }
}

/// The command and wrapper with `config` applied: input defaults,
/// matchers, required and user-settable flags; output labels. The type
/// of an input or an output is the command's and is not changed.
pub fn apply(command: &mut Command, wrapper: &mut Wrapper, config: &CommandConfiguration) {
    for input in wrapper
        .external_inputs
        .iter_mut()
        .chain(wrapper.derived_inputs.iter_mut())
    {
        if let Some(c) = config.inputs.get(&input.name) {
            if c.default_value.is_some() {
                input.default_value = c.default_value.clone();
            }
            if c.matcher.is_some() {
                input.matcher = c.matcher.clone();
            }
            if c.required.is_some() {
                input.required = c.required;
            }
            if c.user_settable.is_some() {
                input.user_settable = c.user_settable;
            }
            if c.description.is_some() {
                input.description = c.description.clone();
            }
        }
    }
    for input in &mut command.inputs {
        if let Some(c) = config.inputs.get(&input.name) {
            if c.default_value.is_some() {
                input.default_value = c.default_value.clone();
            }
            if let Some(required) = c.required {
                input.required = required;
            }
            if c.description.is_some() {
                input.description = c.description.clone();
            }
        }
    }
    for handler in &mut wrapper.output_handlers {
        if let Some(label) = config
            .outputs
            .get(&handler.name)
            .and_then(|o| o.label.clone())
        {
            handler.label = Some(label);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> Command {
        serde_json::from_value(serde_json::json!({
            "name": "tool", "type": "xnatkit", "command-line": "run #LEVEL#",
            "mounts": [{"name": "out", "path": "/output", "writable": true}],
            "inputs": [{"name": "LEVEL", "type": "string", "default-value": "low"}],
            "outputs": [{"name": "o", "mount": "out"}],
            "xnat": [{
                "name": "tool-scan", "contexts": ["xnat:imageScanData"],
                "external-inputs": [{"name": "scan", "type": "Scan", "required": true}],
                "output-handlers": [{"name": "h", "type": "Resource", "accepts-command-output": "o",
                                     "as-a-child-of": "scan", "label": "OUT"}]
            }]
        }))
        .unwrap()
    }

    #[test]
    fn site_then_project_settings_win_and_apply_to_the_command() {
        let mut command = command();
        let mut wrapper = command.xnat[0].clone();
        let mut merged = base(&command, &wrapper);
        assert_eq!(merged.inputs["LEVEL"].default_value.as_deref(), Some("low"));
        assert_eq!(merged.outputs["h"].label.as_deref(), Some("OUT"));
        let site: CommandConfiguration = serde_json::from_value(serde_json::json!({
            "inputs": {"LEVEL": {"default-value": "medium"}},
            "outputs": {"h": {"label": "SITE"}}
        }))
        .unwrap();
        let project: CommandConfiguration = serde_json::from_value(serde_json::json!({
            "inputs": {"LEVEL": {"default-value": 3}}
        }))
        .unwrap();
        overlay(&mut merged, &site);
        overlay(&mut merged, &project);
        assert_eq!(merged.inputs["LEVEL"].default_value.as_deref(), Some("3"));
        assert_eq!(merged.inputs["LEVEL"].kind.as_deref(), Some("string"));
        assert_eq!(merged.outputs["h"].label.as_deref(), Some("SITE"));
        apply(&mut command, &mut wrapper, &merged);
        assert_eq!(command.inputs[0].default_value.as_deref(), Some("3"));
        assert_eq!(wrapper.output_handlers[0].label.as_deref(), Some("SITE"));
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        let command = command();
        let bad: CommandConfiguration =
            serde_json::from_value(serde_json::json!({"inputs": {"LEVLE": {}}})).unwrap();
        let err = validate(&command, &command.xnat[0], &bad).unwrap_err();
        assert!(
            err.contains("no input LEVLE") && err.contains("LEVEL, scan"),
            "{err}"
        );
        let bad: CommandConfiguration =
            serde_json::from_value(serde_json::json!({"outputs": {"x": {}}})).unwrap();
        assert!(validate(&command, &command.xnat[0], &bad).is_err());
    }
}
