//! Link-time settings of the `xnatkit` binary.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=symbol-order.txt");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
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
        if links_with_lld() {
            order_functions();
        }
    }
}

/// The functions `xnatkit maps` runs laid out first and together
/// (`scripts/symbol-order.sh` writes the list): scattered over 31 MB of
/// code, the kernel's fault-around made about 8 MB of it resident for a few
/// hundred KB executed. Names the binary no longer has (a dependency or
/// the toolchain changed) are skipped without a warning; the layout of
/// the others still holds.
fn order_functions() {
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = std::path::Path::new(&dir).join("symbol-order.txt");
    if order.is_file() {
        println!(
            "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the link is lld's, the only one here that reads a symbol
/// ordering file: rustc links x86_64-unknown-linux-gnu with its own lld
/// from 1.90 on, unless the flags choose another linker.
fn links_with_lld() -> bool {
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let other_linker = flags.split('\x1f').any(|flag| {
        flag.contains("linker-features=-lld")
            || flag.contains("link-self-contained=-linker")
            || flag.starts_with("linker=")
            || flag.starts_with("-Clinker=")
            || flag.contains("-fuse-ld=")
    });
    let linker_set = std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some();
    target == "x86_64-unknown-linux-gnu"
        && !other_linker
        && !linker_set
        && rustc_minor().is_some_and(|m| m >= 90)
}

/// The minor version of the rustc that builds the binary (1.x).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").ok()?;
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8(out.stdout).ok()?;
    version
        .split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}
