//! Where the headers of the bundled libuv are, for building C programs
//! against `libuvcurl`: libuv-sys2 reports its include directory as
//! `DEP_UV_INCLUDE = libuv/include`, relative to its own source directory,
//! which `cargo metadata` names. Shared by `tests/c_api.rs` and
//! `benches/compare.rs`; `vendor/install-c` reads the same directory off
//! cargo's build messages.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding the bundled libuv's `uv.h` (and `uv/*.h`).
pub fn libuv_include() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Only the host's packages: dependencies of other targets (wasm-only
    // ones, say) need not be downloaded, and --offline would fail on them.
    let host = host_triple()?;
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|package| package["name"] == "libuv-sys2")
        .and_then(|package| package["manifest_path"].as_str())
        .ok_or("cargo metadata lists no libuv-sys2")?;
    let include = Path::new(manifest)
        .parent()
        .ok_or("libuv-sys2's manifest has no directory")?
        .join("libuv/include");
    if include.join("uv.h").is_file() {
        Ok(include)
    } else {
        Err(format!("no uv.h in {}", include.display()))
    }
}

/// The host's target triple, as `rustc -vV` reports it.
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV names no host".to_owned())
}
