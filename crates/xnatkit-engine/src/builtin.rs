//! The commands that ship with the binary (dcm2niix, QA, the parametric
//! maps of `xnatkit-maps` and their ROI statistics), kept as command JSON so that
//! `GET /xapi/commands` shows them exactly like registered ones and xnatctl
//! launches them unchanged. The JSON is the one NrgXnat's `xnat/dcm2niix`
//! uses (wrapper `dcm2niix-scan`, external input `scan`, a `NIFTI`
//! resource child of the scan), with our built-in type.

use xnatkit_model::container::Command;
use xnatkit_pipelines::builtin::Builtin;

const DCM2NIIX: &str = include_str!("builtin/dcm2niix.json");
const QA: &str = include_str!("builtin/qa.json");
const T2_MAP: &str = include_str!("builtin/t2-map.json");
const T1_SR_MAP: &str = include_str!("builtin/t1-sr-map.json");
const ADC_MAP: &str = include_str!("builtin/adc-map.json");
const MASK_AVERAGE: &str = include_str!("builtin/mask-average.json");

/// Every built-in command, parsed. The JSON is compiled in and checked by
/// this crate's tests, so a parse failure here is a build defect; such a
/// command is left out (and logged) rather than stopping the server.
pub fn commands() -> Vec<Command> {
    [DCM2NIIX, QA, T2_MAP, T1_SR_MAP, ADC_MAP, MASK_AVERAGE]
        .into_iter()
        .filter_map(|text| match serde_json::from_str(text) {
            Ok(cmd) => Some(cmd),
            Err(err) => {
                tracing::error!("a built-in command's JSON does not parse: {err}");
                None
            }
        })
        .collect()
}

/// The built-in that runs a command of [`crate::BUILTIN_TYPE`] named `name`.
pub fn implementation(name: &str) -> Option<Builtin> {
    Builtin::from_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_has_an_implementation() {
        let cmds = commands();
        assert_eq!(cmds.len(), 6);
        for cmd in &cmds {
            assert!(implementation(&cmd.name).is_some(), "{}", cmd.name);
        }
        let dcm = &cmds[0];
        assert_eq!(dcm.xnat[0].name, "dcm2niix-scan");
        assert_eq!(dcm.xnat[0].contexts, ["xnat:imageScanData"]);
        assert_eq!(
            dcm.xnat[0].output_handlers[0].label.as_deref(),
            Some("NIFTI")
        );
        assert_eq!(cmds[1].xnat[0].name, "qa-scan");
        let wrappers: Vec<&str> = cmds[2..].iter().map(|c| c.xnat[0].name.as_str()).collect();
        assert_eq!(
            wrappers,
            [
                "t2-map-scan",
                "t1-sr-map-scan",
                "adc-map-scan",
                "mask-average-session"
            ]
        );
    }
}
