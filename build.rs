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
//! libcurl's public functions are read from the headers curl-sys reports
//! (`DEP_CURL_INCLUDE`, an absolute path). libuv's are listed in
//! `src/capi/libuv_exports.txt`: libuv-sys2 reports its include directory
//! relative to its own source directory, which a build script cannot learn
//! without parsing `cargo metadata` (and a JSON parser would become a build
//! dependency of every dependent). `tests/c_api.rs` checks the list against
//! the `uv.h` of the libuv-sys2 in use and against what `libuvcurl.so`
//! exports; a libuv-sys2 update that changes the API fails that test, and
//! `UVCURL_BLESS=1` rewrites the list.
//!
//! It also writes `$OUT_DIR/uvcurl-c.env` with `CURL_INCLUDE`, `SYSTEM_LIBUV`
//! and `NATIVE_STATIC_LIBS`, read by `tests/c_api.rs`, `benches/compare.rs`
//! and `vendor/install-c` (which find libuv's headers as
//! `tests/native/uv_headers.rs` describes).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// libuv's public functions, one per line (`#` starts a comment).
const LIBUV_EXPORTS: &str = "src/capi/libuv_exports.txt";

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
    println!("cargo:rerun-if-changed={LIBUV_EXPORTS}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let curl_include = env::var_os("DEP_CURL_INCLUDE").map(PathBuf::from);
    warn_without_poll();
    let system_libuv = env::var(SYSTEM_LIBUV).is_ok_and(|v| v == "1");
    if system_libuv {
        check_system_libuv();
    }

    let mut exported = Vec::new();
    if let Some(dir) = &curl_include {
        for header in headers_in(&dir.join("curl")) {
            exported.extend(declared_functions(&header, "CURL_EXTERN", "curl_"));
        }
    }
    if !system_libuv {
        exported.extend(libuv_exports());
    }
    exported.sort();
    exported.dedup();

    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let script = out_dir.join("uvcurl.map");
        // libuv's functions by name (its internals are uv__*); libcurl's by
        // pattern, because a few it declares are compiled out of this build
        // (curl_easy_option_*), and its internals are Curl_* and curlx_*.
        let mut map = String::from("{\n  global:\n    uvcurl_*;\n    curl_*;\n");
        // With the system libuv, `exported` holds no uv_*.
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

    let curl_include = curl_include
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // libuvcurl.a built against the system libuv also needs it at link time.
    let native_static_libs = if system_libuv {
        format!("-luv {NATIVE_STATIC_LIBS}")
    } else {
        NATIVE_STATIC_LIBS.to_owned()
    };
    let env_file = format!(
        "CURL_INCLUDE={}\nSYSTEM_LIBUV={}\nNATIVE_STATIC_LIBS={}\n",
        curl_include,
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

/// The functions listed in `LIBUV_EXPORTS`.
fn libuv_exports() -> Vec<String> {
    let list =
        fs::read_to_string(LIBUV_EXPORTS).unwrap_or_else(|e| panic!("read {LIBUV_EXPORTS}: {e}"));
    list.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
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
