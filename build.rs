//! Build script: links the C ABI's shared library (soname, exported symbols)
//! and records where the bundled libcurl and libuv headers are, for C users.
//!
//! `libuvcurl.so` contains libcurl and libuv (the copies the -sys crates
//! bundle). A C host must call into those very copies -- `uv_loop_t`'s layout
//! differs between libuv versions, and two libcurls in one process cannot share
//! easy handles -- so the shared library exports `uvcurl_*` and the public
//! libcurl and libuv API (exactly the functions their public headers declare),
//! and hides everything else (Rust's std, libuv's and libcurl's internals,
//! nghttp2). The bundled libcurl is compiled with `-fvisibility=default`
//! (`.cargo/config.toml`) so that its functions can be exported at all.
//!
//! With `UVCURL_SYSTEM_LIBUV=1` (and `PKG_CONFIG_PATH` pointing at
//! `vendor/system-libuv`, which makes libuv-sys2 link the system's
//! `libuv.so.1` instead of building its own, see that directory's README) the
//! library contains no libuv at all: it needs the process's libuv (the one a
//! host such as Node, luv or a `-luv` program already has), and exports only
//! `uvcurl_*` and `curl_*`. `vendor/install-c --system-libuv` builds that way.
//!
//! It also writes `$OUT_DIR/uvcurl-c.env` with `CURL_INCLUDE`, `UV_INCLUDE`
//! (empty with the system libuv: hosts use their own `uv.h`), `SYSTEM_LIBUV`
//! and `NATIVE_STATIC_LIBS`, read by `tests/c_api.rs` and `vendor/install-c`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The system libraries `libuvcurl.a` needs at link time on Linux, as
/// `cargo rustc --lib --crate-type staticlib -- --print native-static-libs`
/// reports them (deduplicated). tests/c_api.rs links C programs with exactly
/// this list, so a stale list fails the tests.
const NATIVE_STATIC_LIBS: &str = "-lssl -lcrypto -lz -lpthread -ldl -lrt -lm -lgcc_s -lutil -lc";

/// The environment variable that selects the system-libuv build.
const SYSTEM_LIBUV: &str = "UVCURL_SYSTEM_LIBUV";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={SYSTEM_LIBUV}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let curl_include = env::var_os("DEP_CURL_INCLUDE").map(PathBuf::from);
    warn_without_poll();
    let system_libuv = env::var(SYSTEM_LIBUV).is_ok_and(|v| v == "1");
    if system_libuv {
        check_system_libuv();
    }
    let uv_include = if system_libuv { None } else { uv_include_dir() };

    let mut exported = Vec::new();
    if let Some(dir) = &curl_include {
        for header in headers_in(&dir.join("curl")) {
            exported.extend(declared_functions(&header, "CURL_EXTERN", "curl_"));
        }
    }
    if let Some(dir) = &uv_include {
        exported.extend(declared_functions(&dir.join("uv.h"), "UV_EXTERN", "uv_"));
    }
    exported.sort();
    exported.dedup();

    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let script = out_dir.join("uvcurl.map");
        // libuv's functions by name (its internals are uv__*); libcurl's by
        // pattern, because a few it declares are compiled out of this build
        // (curl_easy_option_*), and its internals are Curl_* and curlx_*.
        let mut map = String::from("{\n  global:\n    uvcurl_*;\n    curl_*;\n");
        // With the system libuv, `exported` holds no uv_* (no headers of our own).
        for symbol in exported.iter().filter(|s| s.starts_with("uv_")) {
            map.push_str(&format!("    {symbol};\n"));
        }
        map.push_str("  local:\n    *;\n};\n");
        fs::write(&script, map).expect("write the version script");
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            script.display()
        );
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libuvcurl.so.0");
        // Pull every public libcurl/libuv function into the shared library,
        // also those the Rust code never calls (uv_tcp_init, curl_easy_escape...).
        for symbol in &exported {
            println!("cargo:rustc-cdylib-link-arg=-Wl,--undefined={symbol}");
        }
    }

    let text = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    // libuvcurl.a built against the system libuv also needs it at link time.
    let native_static_libs = if system_libuv {
        format!("-luv {NATIVE_STATIC_LIBS}")
    } else {
        NATIVE_STATIC_LIBS.to_owned()
    };
    let env_file = format!(
        "CURL_INCLUDE={}\nUV_INCLUDE={}\nSYSTEM_LIBUV={}\nNATIVE_STATIC_LIBS={}\n",
        text(&curl_include),
        text(&uv_include),
        u8::from(system_libuv),
        native_static_libs
    );
    fs::write(out_dir.join("uvcurl-c.env"), env_file).expect("write uvcurl-c.env");
}

/// Fails the build unless pkg-config resolves `libuv` the way libuv-sys2
/// needs it to for linking the system library (a version in libuv-sys2's
/// accepted range, as `vendor/system-libuv/libuv.pc` reports). Otherwise
/// libuv-sys2 would have built and linked its bundled copy, and the
/// library would silently contain libuv after all.
fn check_system_libuv() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let probe = Command::new("pkg-config")
        .args(["--atleast-version=1.53.1", "--max-version=1.53.99", "libuv"])
        .status();
    if !matches!(probe, Ok(status) if status.success()) {
        panic!(
            "{SYSTEM_LIBUV}=1 needs PKG_CONFIG_PATH to include vendor/system-libuv \
             (so that libuv-sys2 links the system libuv); see vendor/system-libuv/README.md"
        );
    }
}

/// The bundled libcurl takes `HAVE_POLL` from `CFLAGS` only; without it, its
/// transfers on sockets numbered 1024 or above fail (`ErrorKind::SocketLimit`).
/// Say so at build time, where it can still be fixed.
fn warn_without_poll() {
    println!("cargo:rerun-if-env-changed=CFLAGS");
    let bundled = env::var_os("CARGO_FEATURE_BUNDLED").is_some();
    let cflags = env::var("CFLAGS").unwrap_or_default();
    if bundled && !cflags.contains("-DHAVE_POLL") {
        println!(
            "cargo:warning=uvcurl: the bundled libcurl is built without poll() (CFLAGS has no \
             -DHAVE_POLL): transfers on sockets numbered 1024 or above will fail with \
             ErrorKind::SocketLimit. Set [env] CFLAGS = {{ value = \"-DHAVE_POLL\", force = true }} \
             in .cargo/config.toml (see uvcurl's docs, \"Sockets above 1024\")."
        );
    }
}

/// libuv's public include directory. libuv-sys2 reports it as `DEP_UV_INCLUDE`,
/// relative to its own crate directory when it builds the bundled libuv, so
/// that directory is looked up with `cargo metadata`.
fn uv_include_dir() -> Option<PathBuf> {
    let reported = PathBuf::from(env::var_os("DEP_UV_INCLUDE")?);
    if reported.is_absolute() {
        return Some(reported);
    }
    let crate_dir = libuv_sys2_dir().or_else(libuv_sys2_in_registry);
    match crate_dir {
        Some(dir) if dir.join(&reported).join("uv.h").is_file() => Some(dir.join(reported)),
        _ => {
            println!("cargo:warning=uvcurl: libuv headers not found; C programs cannot be built");
            None
        }
    }
}

/// The source directory of the libuv-sys2 package this build uses.
fn libuv_sys2_dir() -> Option<PathBuf> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")?;
    // Only this target's packages: others (wasm-only dev-dependencies, say)
    // need not be downloaded, and --offline would fail on them.
    let target = env::var("TARGET").ok()?;
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &target])
        .current_dir(manifest_dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let json = String::from_utf8(output.stdout).ok()?;
    // Each package object holds its "id" ("...#libuv-sys2@1.53.1") before its
    // "manifest_path"; dependency entries have no "id", so the first
    // manifest_path after the package's id is the package's own.
    let mut rest = json.as_str();
    while let Some(at) = rest.find("\"id\":\"") {
        rest = &rest[at + 6..];
        let id = &rest[..rest.find('"')?];
        if id.contains("libuv-sys2@") || id.starts_with("libuv-sys2 ") {
            let key = "\"manifest_path\":\"";
            let start = rest.find(key)? + key.len();
            let path = &rest[start..start + rest[start..].find('"')?];
            return Path::new(path).parent().map(Path::to_path_buf);
        }
    }
    None
}

/// Fallback: the version locked in this package's Cargo.lock, unpacked in
/// cargo's registry cache.
fn libuv_sys2_in_registry() -> Option<PathBuf> {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR")?);
    let lock = fs::read_to_string(manifest_dir.join("Cargo.lock")).ok()?;
    let after = lock.split("name = \"libuv-sys2\"\nversion = \"").nth(1)?;
    let version = &after[..after.find('"')?];
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let registries = fs::read_dir(cargo_home.join("registry/src")).ok()?;
    registries
        .filter_map(|r| r.ok())
        .map(|r| r.path().join(format!("libuv-sys2-{version}")))
        .find(|dir| dir.join("Cargo.toml").is_file())
}

fn headers_in(dir: &Path) -> Vec<PathBuf> {
    let mut headers: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "h"))
                .collect()
        })
        .unwrap_or_default();
    headers.sort();
    headers
}

/// Names of the functions declared `marker ... prefix_name(` in `header`.
fn declared_functions(header: &Path, marker: &str, prefix: &str) -> Vec<String> {
    let Ok(source) = fs::read_to_string(header) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for declaration in source.split(marker).skip(1) {
        let declaration = declaration.split(';').next().unwrap_or("");
        // Drop string literals (deprecation messages name other functions).
        let code: String = declaration
            .split('"')
            .step_by(2)
            .collect::<Vec<_>>()
            .join(" ");
        let bytes = code.as_bytes();
        let mut i = 0;
        while let Some(found) = code[i..].find(prefix) {
            let start = i + found;
            let boundary = start == 0 || !is_ident(bytes[start - 1]);
            let mut end = start;
            while end < bytes.len() && is_ident(bytes[end]) {
                end += 1;
            }
            let after = code[end..].trim_start();
            if boundary && after.starts_with('(') {
                names.push(code[start..end].to_owned());
                break;
            }
            i = end.max(start + 1);
        }
    }
    names
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
