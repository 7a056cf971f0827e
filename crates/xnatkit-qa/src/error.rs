//! What can go wrong while assessing one image.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is not a NIfTI image this reader understands.
    #[error("{}: not a readable NIfTI image: {reason}", path.display())]
    Nifti { path: PathBuf, reason: String },
    /// The image has a shape the metrics are not defined for.
    #[error("{}: {reason}", path.display())]
    Shape { path: PathBuf, reason: String },
    /// Nothing in the image stands out from the background.
    #[error("no head or object found: the image is empty or uniform")]
    EmptyMask,
    /// Writing an output failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: xnatkit_fileio::Error,
    },
}
