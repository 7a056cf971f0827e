//! One module per subcommand.
pub mod common;
pub mod convert;
pub mod demo;
pub mod download;
pub mod dump;
pub mod export;
pub mod fields;
pub mod import;
pub mod login;
pub mod ls;
pub mod maps;
pub mod pipeline;
pub mod prearchive;
pub mod serve;
pub mod upload;
