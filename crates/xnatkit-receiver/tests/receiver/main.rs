//! xnatkit-receiver's integration tests, one test binary: the C-STORE
//! receiver against DCMTK's storescu/echoscu/storescp and pynetdicom, and the
//! study assembler.

// Test code: a failed step should panic with its error.
#![allow(clippy::unwrap_used)]

mod assembler;
mod scp;
