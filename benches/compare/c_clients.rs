//! Finding the binaries the runner measures: the examples it runs as
//! clients, the tools it compares with, and the C baselines it compiles
//! against the very libcurl and libuv uvcurl links.

use super::*;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The downloader's binary, or `explicit`.
pub(crate) fn find_downloader(explicit: Option<&Path>) -> Result<PathBuf, String> {
    find_example("download", "the downloader", "--download-bin", explicit)
}

/// The binary of example `name` (`what` in messages), or `explicit`.
pub(crate) fn find_example(
    name: &str,
    what: &str,
    option: &str,
    explicit: Option<&Path>,
) -> Result<PathBuf, String> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            // This binary is target/<profile>/deps/compare-HASH.
            let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
            let profile_dir = me
                .parent()
                .and_then(Path::parent)
                .ok_or("cannot locate the target directory")?;
            profile_dir.join("examples").join(name)
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{what} {} is missing: build it first with \
             `vendor/cargo build --release --example {name}`, or pass {option} \
             (or leave it out with --clients c-glue,uvcurl,reqwest)",
            path.display()
        ))
    }
}

/// Compiles the chosen C clients (in parallel) against the libcurl and libuv
/// inside this build's `libuvcurl.a`, unless an up-to-date binary is cached
/// in `target/<profile>/compare-c/`. Returns (client, binary) pairs.
pub(crate) fn build_c_clients(clients: &[&str]) -> Result<Vec<(&'static str, PathBuf)>, String> {
    let wanted: Vec<(&'static str, &'static str)> = C_CLIENTS
        .iter()
        .copied()
        .filter(|(name, _)| clients.contains(name))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // This binary is target/<profile>/deps/compare-HASH; cargo built
    // deps/libuvcurl.a for it (crate-type staticlib), with libcurl and libuv.
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = me.parent().ok_or("cannot locate target/<profile>/deps")?;
    let archive = deps.join("libuvcurl.a");
    if !archive.is_file() {
        return Err(format!("{} is missing", archive.display()));
    }
    let env_file = Path::new(env!("OUT_DIR")).join("uvcurl-c.env");
    let env_text =
        fs::read_to_string(&env_file).map_err(|e| format!("{}: {e}", env_file.display()))?;
    let get = |key: &str| {
        env_text
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(str::to_string)
            .ok_or_else(|| format!("{}: no {key}", env_file.display()))
    };
    let curl_include = get("CURL_INCLUDE")?;
    let uv_include = uv_headers::libuv_include()?;
    let native_libs = get("NATIVE_STATIC_LIBS")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source_dir = root.join("benches/compare/c");
    let out_dir = deps
        .parent()
        .ok_or("cannot locate target/<profile>")?
        .join("compare-c");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let inputs_newest = [
        source_dir.join("common.h"),
        root.join("include/uvcurl.h"),
        archive.clone(),
        env_file.clone(),
    ]
    .iter()
    .filter_map(|p| modified(p))
    .max();

    let mut building = Vec::new();
    let mut built = Vec::new();
    for (name, source) in wanted {
        let source = source_dir.join(source);
        let exe = out_dir.join(name);
        let newest = modified(&source).max(inputs_newest);
        let fresh = matches!((modified(&exe), newest), (Some(e), Some(n)) if e >= n);
        if !fresh {
            let mut cc = Command::new("cc");
            cc.args(["-O2", "-g", "-Wall", "-Wextra", "-std=gnu11"])
                .arg("-I")
                .arg(root.join("include"))
                .arg("-I")
                .arg(&curl_include)
                .arg("-I")
                .arg(&uv_include)
                .arg(&source)
                .arg(&archive)
                .args(native_libs.split_whitespace())
                .arg("-o")
                .arg(&exe)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let child = cc
                .spawn()
                .map_err(|e| format!("cc {}: {e}", source.display()))?;
            building.push((name, source, child));
        }
        built.push((name, exe));
    }
    let mut failures = String::new();
    for (name, source, child) in building {
        let output = child
            .wait_with_output()
            .map_err(|e| format!("cc {}: {e}", source.display()))?;
        if !output.status.success() {
            let exe = out_dir.join(name);
            let _ = fs::remove_file(&exe);
            let _ = write!(
                failures,
                "cc {} failed ({}):\n{}{}",
                source.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    if failures.is_empty() {
        Ok(built)
    } else {
        Err(failures)
    }
}

/// The tool at one of `paths` or on PATH. vendor/bootstrap installs the
/// Debian package of the same name (`vendor/cargo bench` and `vendor/cargo
/// test` run it); this runner installs nothing.
pub(crate) fn find_tool(name: &str, paths: &[&str]) -> Result<PathBuf, String> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    paths
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{name} is missing: install it with `vendor/bootstrap {name}` \
                 (`vendor/cargo bench` and `vendor/cargo test` do that for nginx)"
            )
        })
}
