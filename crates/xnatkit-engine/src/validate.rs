//! Why a command may be refused at registration: there is no container
//! runtime on these machines, so Docker images cannot run; everything the
//! launch later relies on (mount names, outputs, handler parents) is
//! checked now, so a bad command fails at `POST /xapi/commands`, not on the
//! hundredth scan of a bulk launch.

use std::collections::BTreeSet;

use xnatkit_model::container::Command;

use crate::resolve::OutputKind;

/// A command line run on the worker, the mounts as folders (XNAT-PIC's
/// style: a shell script calling MATLAB or Python). The one type admins
/// register.
pub const COMMAND_LINE_TYPE: &str = "xnatkit";

/// A command compiled into xnatkit; only the server registers these.
pub const BUILTIN_TYPE: &str = "xnatkit-builtin";

/// Why a command cannot be registered.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidCommand(pub String);

fn bad(msg: impl Into<String>) -> InvalidCommand {
    InvalidCommand(msg.into())
}

/// Checks `command`; `builtin_allowed` is true only for the server's own.
pub fn validate(command: &Command, builtin_allowed: bool) -> Result<(), InvalidCommand> {
    let name = command.name.trim();
    if name.is_empty() {
        return Err(bad("the command has no name; add \"name\""));
    }
    match command.kind.as_deref().unwrap_or("docker") {
        COMMAND_LINE_TYPE => {}
        BUILTIN_TYPE if builtin_allowed => {}
        BUILTIN_TYPE => {
            return Err(bad(format!(
                "command {name}: type \"{BUILTIN_TYPE}\" is reserved for the commands built into xnatkit; register the command with type \"{COMMAND_LINE_TYPE}\" and a command-line run on the worker"
            )));
        }
        other => {
            let image = command
                .image
                .as_deref()
                .map(|i| format!(" (image {i})"))
                .unwrap_or_default();
            return Err(bad(format!(
                "command {name}: type \"{other}\"{image} needs a container runtime, and this server has none: register the command with type \"{COMMAND_LINE_TYPE}\" and a command-line run on the worker, its inputs and outputs mounted as folders"
            )));
        }
    }
    if command.command_line.trim().is_empty() {
        return Err(bad(format!("command {name}: \"command-line\" is empty")));
    }
    let mut seen = BTreeSet::new();
    for input in &command.inputs {
        if !seen.insert(input.name.as_str()) {
            return Err(bad(format!(
                "command {name}: input {} is named twice",
                input.name
            )));
        }
    }
    let mounts: BTreeSet<&str> = command.mounts.iter().map(|m| m.name.as_str()).collect();
    if mounts.len() != command.mounts.len() {
        return Err(bad(format!("command {name}: a mount name is used twice")));
    }
    let outputs: BTreeSet<&str> = command.outputs.iter().map(|o| o.name.as_str()).collect();
    for output in &command.outputs {
        let writable = command
            .mounts
            .iter()
            .any(|m| m.name == output.mount && m.writable);
        if !writable {
            return Err(bad(format!(
                "command {name}: output {} goes to mount {:?}, which is not a writable mount of the command",
                output.name, output.mount
            )));
        }
        crate::output_glob::OutputSelector::new(output.glob.as_deref())
            .map_err(|e| bad(format!("command {name}: output {}: {e}", output.name)))?;
    }
    if command.xnat.is_empty() {
        return Err(bad(format!(
            "command {name}: no wrapper (\"xnat\" is empty), so it cannot be launched on anything"
        )));
    }
    let mut wrapper_names = BTreeSet::new();
    for wrapper in &command.xnat {
        let w = wrapper.name.as_str();
        if !wrapper_names.insert(w) {
            return Err(bad(format!("command {name}: wrapper {w} is named twice")));
        }
        if wrapper.contexts.is_empty() {
            return Err(bad(format!(
                "command {name}: wrapper {w} has no contexts (e.g. \"xnat:imageScanData\")"
            )));
        }
        let inputs: BTreeSet<&str> = wrapper
            .external_inputs
            .iter()
            .chain(&wrapper.derived_inputs)
            .map(|i| i.name.as_str())
            .collect();
        for input in wrapper
            .external_inputs
            .iter()
            .chain(&wrapper.derived_inputs)
        {
            if let Some(mount) = &input.provides_files_for_command_mount
                && !mounts.contains(mount.as_str())
            {
                return Err(bad(format!(
                    "command {name}: wrapper input {} provides files for mount {mount}, which the command does not have",
                    input.name
                )));
            }
            if let Some(parent) = &input.derived_from_wrapper_input
                && !inputs.contains(parent.as_str())
            {
                return Err(bad(format!(
                    "command {name}: wrapper input {} derives from {parent}, which wrapper {w} does not have",
                    input.name
                )));
            }
        }
        for handler in &wrapper.output_handlers {
            if !outputs.contains(handler.accepts_command_output.as_str()) {
                return Err(bad(format!(
                    "command {name}: output handler {} accepts output {:?}, which the command does not have",
                    handler.name, handler.accepts_command_output
                )));
            }
            if !inputs.contains(handler.as_a_child_of.as_str()) {
                return Err(bad(format!(
                    "command {name}: output handler {} is a child of {:?}, which wrapper {w} does not have",
                    handler.name, handler.as_a_child_of
                )));
            }
            OutputKind::of(handler).map_err(|e| bad(format!("command {name}: {e}")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;

    #[test]
    fn docker_images_are_refused_with_what_to_do() {
        let mut cmd = builtin::commands().remove(0);
        cmd.kind = Some("docker".to_owned());
        cmd.image = Some("xnat/dcm2niix:1.6".to_owned());
        let err = validate(&cmd, false).unwrap_err().to_string();
        assert!(
            err.contains("no") && err.contains("container runtime"),
            "{err}"
        );
        assert!(err.contains("\"xnatkit\""), "{err}");
        assert!(err.contains("xnat/dcm2niix:1.6"), "{err}");
    }

    #[test]
    fn builtins_validate_but_only_for_the_server() {
        for cmd in builtin::commands() {
            validate(&cmd, true).unwrap();
            assert!(validate(&cmd, false).is_err());
        }
    }

    #[test]
    fn dangling_references_are_refused() {
        let mut cmd = builtin::commands().remove(0);
        cmd.kind = Some(COMMAND_LINE_TYPE.to_owned());
        cmd.xnat[0].output_handlers[0].accepts_command_output = "nope".to_owned();
        assert!(validate(&cmd, false).unwrap_err().0.contains("nope"));
    }
}
