//! Link-time settings of the `xnatkit` binary.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Relative relocations packed as DT_RELR (glibc ≥ 2.36, GNU ld ≥
        // 2.38 or lld): the position-independent binary's ~100 000
        // relocations take 20 KB instead of 1.6 MB, and the dynamic loader
        // no longer reads 1.6 MB of the file at every start (about 1.3 MB of
        // each run's peak resident memory; `bench/maps.sh`). An older GNU ld
        // warns and links without it.
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
