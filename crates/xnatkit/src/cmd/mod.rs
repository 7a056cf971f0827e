//! One module per subcommand.
pub mod convert;
pub mod upload;
pub mod serve;
