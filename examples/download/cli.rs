//! The command line: what the user can ask for, checked up front.
//!
//! Everything that can be wrong with an invocation (an unknown option, an
//! unreadable input file, a URL that does not parse, a malformed header) is
//! found here, before a single transfer starts, and reported as a
//! [`UsageError`] (exit status 2).

use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::checksum::Checksum;
use crate::link::Link;
use crate::naming;

/// Download many URLs concurrently with uvcurl: libcurl's multi interface
/// driven by one libuv loop.
///
/// Files are written to NAME.part and renamed to NAME once complete (one of
/// at most 64 KiB is held in memory and written to NAME only once whole);
/// nothing is ever written outside the output directory.
#[derive(Debug, Parser)]
#[command(name = "download", version)]
pub struct Cli {
    /// URLs to download (http or https).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,

    /// Read URLs from FILE, one per line; blank lines and `#` comments are
    /// ignored; `-` reads standard input. Lines indented by whitespace after
    /// a URL set options of that URL, as with aria2c: `out=NAME` (its file
    /// name, sanitized like any other; it wins over the server's
    /// Content-Disposition) and `checksum=ALGO=HEX` (as --checksum).
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Verify the downloaded file's digest, e.g. `sha-256=9f86d0...`; ALGO
    /// is sha-224, sha-256, sha-384 or sha-512 (or sha256, ...). Only with a
    /// single URL on the command line. The whole file is hashed, resumed
    /// bytes included, before it gets its final name; a file that does not
    /// match fails (exit 1), is not retried, and its `.part` is deleted,
    /// even with --continue.
    #[arg(long, value_name = "ALGO=HEX", value_parser = Checksum::parse)]
    pub checksum: Option<Checksum>,

    /// Directory to write into (created if missing). Default: `.`, or a
    /// fresh temporary directory with --demo.
    #[arg(short, long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Files downloading at once (with --split, each may use N connections).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub parallel: u32,

    /// Fetch each file as up to N ranged segments in parallel (like aria2c's
    /// -x N -s N), written in place into NAME.part; segments are at least
    /// 1 MiB, and over HTTP/1.1 a connection that is done takes over half
    /// of the slowest one's rest. A server that does not serve ranges gets one connection.
    /// With --continue, NAME.part.state records each segment's progress, so
    /// a rerun fetches only the missing bytes (all of them again if the file
    /// changed on the server). -j counts files, so up to -j x N connections
    /// are open; --max-speed caps each file, its segments sharing the rate.
    #[arg(short = 's', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub split: u32,

    /// Retries of a transient failure (connection errors, timeouts, resets,
    /// HTTP 408, 429 and 5xx), with exponential backoff and jitter.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,

    /// Resume partial NAME.part files with a Range request, and keep them
    /// when a transfer fails (but not after a checksum mismatch). A NAME
    /// saved by an earlier run is checked the same way, not fetched again.
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,

    /// Seconds allowed to connect (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub connect_timeout: Option<Duration>,

    /// Seconds allowed for each transfer attempt as a whole.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Cap on each file's download rate in bytes per second; K, M and G
    /// suffixes are powers of 1024 (e.g. 500K, 2M).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_speed: Option<u64>,

    /// Speak HTTP/2 right away, also over cleartext http:// (h2c).
    #[arg(long)]
    pub http2_prior_knowledge: bool,

    /// Trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Do not verify TLS certificates (dangerous; prints a warning).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Send every request through this proxy (`http://`, `https://`,
    /// `socks5://` or `socks5h://` URL), instead of the one `http_proxy`,
    /// `https_proxy` or `all_proxy` name (hosts in `no_proxy` go direct), as
    /// curl does.
    #[arg(short = 'x', long, value_name = "URL", value_parser = parse_proxy)]
    pub proxy: Option<String>,

    /// User-Agent header to send.
    #[arg(long, value_name = "STRING", default_value = concat!("uvcurl-download/", env!("CARGO_PKG_VERSION")))]
    pub user_agent: String,

    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    pub headers: Vec<String>,

    /// Replace existing files instead of picking a free `NAME.N`.
    #[arg(long)]
    pub overwrite: bool,

    /// Serve a few hundred generated files from an in-process loopback
    /// server, download them all and verify every SHA-256.
    #[arg(long, conflicts_with_all = ["urls", "input", "checksum"])]
    pub demo: bool,

    /// Print nothing but failures (and the --json summary).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also report retries, resumed files and chosen names.
    #[arg(short, long)]
    pub verbose: bool,

    /// Print a machine-readable summary on standard output.
    #[arg(long)]
    pub json: bool,
}

/// How much to tell on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Failures only.
    Quiet,
    /// Progress and the summary.
    Normal,
    /// Also retries, resumes and chosen names.
    Verbose,
}

/// What the downloads are to do, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where files go.
    pub out_dir: PathBuf,
    /// Transfers running at once.
    pub parallel: usize,
    /// Ranged segments per file (1: one plain request).
    pub split: u32,
    /// Retries of a transient failure.
    pub retries: u32,
    /// Resume `.part` files and keep them on failure.
    pub resume: bool,
    /// Replace existing files.
    pub overwrite: bool,
    /// Time allowed to connect.
    pub connect_timeout: Option<Duration>,
    /// Time allowed for one attempt.
    pub timeout: Option<Duration>,
    /// Per-transfer rate cap in bytes per second.
    pub max_speed: Option<u64>,
    /// HTTP/2 with prior knowledge.
    pub http2_prior_knowledge: bool,
    /// CA bundle to trust.
    pub cacert: Option<PathBuf>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Proxy for every request (else the environment's, as libcurl reads it).
    pub proxy: Option<String>,
    /// User-Agent header.
    pub user_agent: String,
    /// Extra `Name: value` headers.
    pub headers: Vec<String>,
    /// How chatty to be on standard error.
    pub verbosity: Verbosity,
    /// Print the summary as JSON on standard output.
    pub json: bool,
    /// Whether the report lists each saved file (its URL and path), for
    /// `--json` and the demo's check; otherwise it only counts them.
    pub list_saved: bool,
}

impl Settings {
    /// The settings of `cli`, writing into `out_dir`.
    ///
    /// # Errors
    /// A `--cacert` file that cannot be read.
    pub fn new(cli: &Cli, out_dir: PathBuf) -> Result<Settings, UsageError> {
        if let Some(path) = &cli.cacert {
            fs::File::open(path)
                .map_err(|e| UsageError(format!("cannot read CA file {}: {e}", path.display())))?;
        }
        let verbosity = if cli.quiet {
            Verbosity::Quiet
        } else if cli.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        Ok(Settings {
            out_dir,
            parallel: cli.parallel as usize,
            split: cli.split,
            retries: cli.retries,
            resume: cli.resume,
            overwrite: cli.overwrite,
            connect_timeout: cli.connect_timeout,
            timeout: cli.timeout,
            max_speed: cli.max_speed,
            http2_prior_knowledge: cli.http2_prior_knowledge,
            cacert: cli.cacert.clone(),
            insecure: cli.insecure,
            proxy: cli.proxy.clone(),
            user_agent: cli.user_agent.clone(),
            headers: cli.headers.clone(),
            verbosity,
            json: cli.json,
            list_saved: cli.json || cli.demo,
        })
    }
}

/// An invocation that cannot run: printed with exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One URL to download, with its own options.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What to download.
    pub url: Link,
    /// The file name asked for (`out=`), already sanitized.
    pub out: Option<String>,
    /// The digest the file must have.
    pub checksum: Option<Checksum>,
}

impl Entry {
    /// A URL without options.
    pub fn plain(url: impl Into<Link>) -> Entry {
        Entry {
            url: url.into(),
            out: None,
            checksum: None,
        }
    }
}

/// All URLs of the invocation: the input file's first (in order), then the
/// command line's. Each is checked: it must parse and be http or https.
///
/// # Errors
/// An unreadable input file, the first bad URL or option line, named with
/// its file and line number (or its position on the command line), or
/// `--checksum` with other than one command-line URL.
pub fn collect_urls(cli: &Cli) -> Result<Vec<Entry>, UsageError> {
    if cli.checksum.is_some() && (cli.input.is_some() || cli.urls.len() != 1) {
        return Err(UsageError(
            "--checksum needs exactly one URL on the command line (and no --input); \
             give several URLs their digests with checksum= lines in an input file"
                .to_owned(),
        ));
    }
    let mut entries = Vec::new();
    if let Some(path) = &cli.input {
        let (label, reader) = open_input(path)?;
        entries = read_input(&label, reader)?;
    }
    for (index, text) in cli.urls.iter().enumerate() {
        let url = check_url(text.trim())
            .map_err(|why| UsageError(format!("command-line URL #{}: {why}", index + 1)))?;
        entries.push(Entry {
            url,
            out: None,
            checksum: cli.checksum.clone(),
        });
    }
    Ok(entries)
}

/// Reads an input file: a URL per line, each optionally followed by
/// indented `name=value` lines that apply to it; blank lines and `#`
/// comments are skipped anywhere.
///
/// # Errors
/// A read error, or the first bad line, as `LABEL:LINE: why`.
pub fn read_input(label: &str, reader: impl BufRead) -> Result<Vec<Entry>, UsageError> {
    let mut entries: Vec<Entry> = Vec::new();
    // One buffer for every line (each URL is then copied once, at its
    // length, rather than grown in a fresh string of its own).
    let mut line = String::new();
    let mut reader = reader;
    for index in 0.. {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| UsageError(format!("cannot read input file {label}: {e}")))?;
        if read == 0 {
            break;
        }
        let at = |why: String| UsageError(format!("{label}:{}: {why}", index + 1));
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            let entry = entries.last_mut().ok_or_else(|| {
                at(format!(
                    "option line {text:?} before any URL (indented lines set options of the URL above them)"
                ))
            })?;
            apply_option(entry, text).map_err(at)?;
        } else {
            entries.push(Entry::plain(check_url(text).map_err(at)?));
        }
    }
    Ok(entries)
}

/// Applies one `name=value` option line to `entry`.
fn apply_option(entry: &mut Entry, text: &str) -> Result<(), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("option line {text:?} is not of the form name=value"))?;
    match name.trim() {
        "out" => {
            if entry.out.is_some() {
                return Err("out= given twice for one URL".to_owned());
            }
            let name = naming::sanitize(value)
                .ok_or_else(|| format!("out={value:?} leaves no usable file name"))?;
            entry.out = Some(name);
        }
        "checksum" => {
            if entry.checksum.is_some() {
                return Err("checksum= given twice for one URL".to_owned());
            }
            entry.checksum = Some(Checksum::parse(value)?);
        }
        other => return Err(format!("unknown option {other:?} (known: out, checksum)")),
    }
    Ok(())
}

/// Opens the input file (or standard input for `-`), with a label for messages.
fn open_input(path: &PathBuf) -> Result<(String, Box<dyn BufRead>), UsageError> {
    if path.as_os_str() == "-" {
        return Ok(("<stdin>".to_owned(), Box::new(BufReader::new(io::stdin()))));
    }
    let label = path.display().to_string();
    let file = fs::File::open(path)
        .map_err(|e| UsageError(format!("cannot open input file {label}: {e}")))?;
    Ok((label, Box::new(BufReader::new(file))))
}

/// Parses one URL and checks that it is an http(s) URL with a host.
pub fn check_url(text: &str) -> Result<Link, String> {
    Link::parse(text)
}

/// Parses `--max-speed`: a byte count with an optional K/M/G suffix (powers
/// of 1024), fractions allowed (`1.5M`), optionally followed by `B` or `/s`.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let lower = lower.trim_end_matches("/s").trim_end_matches('b');
    let (number, scale) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1024.0),
        Some('m') => (&lower[..lower.len() - 1], 1024.0 * 1024.0),
        Some('g') => (&lower[..lower.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (lower, 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{trimmed:?} is not a rate like 500K or 2M"))?;
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("rate {trimmed:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// Checks `--proxy`: a URL with a scheme libcurl proxies through and a host.
fn parse_proxy(text: &str) -> Result<String, String> {
    let url =
        url::Url::parse(text.trim()).map_err(|e| format!("invalid proxy URL {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(format!(
            "unsupported proxy scheme {:?} in {text:?} (http, https, socks5, socks5h)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("proxy URL {text:?} has no host"));
    }
    Ok(text.trim().to_owned())
}

/// Parses a number of seconds such as `10` or `2.5`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("{text:?} seconds is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Checks a `-H` header: `Name: value`, a token name, no CR/LF/NUL.
fn parse_header(text: &str) -> Result<String, String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header {text:?} is not of the form 'Name: value'"))?;
    let name = name.trim();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("header name {name:?} is not valid"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("header {name} has a CR, LF or NUL in its value"));
    }
    Ok(format!("{name}: {}", value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("500K"), Ok(500 * 1024));
        assert_eq!(parse_rate("2M"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_rate("1.5m"), Ok(1536 * 1024));
        assert_eq!(parse_rate("100"), Ok(100));
        assert_eq!(parse_rate("2MB/s"), Ok(2 * 1024 * 1024));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn proxies() {
        assert!(parse_proxy("http://127.0.0.1:3128").is_ok());
        assert!(parse_proxy("socks5h://localhost:1080").is_ok());
        assert!(parse_proxy("ftp://127.0.0.1/").is_err());
        assert!(parse_proxy("127.0.0.1:3128").is_err());
        assert!(parse_proxy("http://").is_err());
    }

    fn read(text: &str) -> Result<Vec<Entry>, String> {
        read_input("list", text.as_bytes()).map_err(|e| e.0)
    }

    const SUM: &str = "sha-256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn input_files_with_options() {
        let text = format!(
            "# list\nhttp://h/a\n  out=first.bin\n\t checksum = {SUM}\n\n# c\n   \n\
             http://h/b\nhttp://h/c\n # indented comment\n  out=../../etc/passwd\n"
        );
        let entries = read(&text).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].url.as_str(), "http://h/a");
        assert_eq!(entries[0].out.as_deref(), Some("first.bin"));
        assert_eq!(entries[0].checksum, Some(Checksum::parse(SUM).unwrap()));
        assert_eq!(
            entries[1],
            Entry::plain(url::Url::parse("http://h/b").unwrap())
        );
        assert_eq!(entries[2].out.as_deref(), Some("passwd"));
        assert_eq!(entries[2].checksum, None);
    }

    #[test]
    fn crlf_lines_and_a_last_line_without_newline() {
        let entries = read("http://h/a\r\n  out=x.bin\r\n\r\nhttp://h/b").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].url.as_str(), "http://h/a");
        assert_eq!(entries[0].out.as_deref(), Some("x.bin"));
        assert_eq!(entries[1].url.as_str(), "http://h/b");
        let error = read("http://h/a\r\n\r\nnot a url\r\n").unwrap_err();
        assert!(error.starts_with("list:3: "), "{error}");
    }

    #[test]
    fn bad_option_lines_name_their_line() {
        for (text, line, why) in [
            ("  out=x\nhttp://h/a\n", 1, "before any URL"),
            ("# c\n\n  out=x\n", 3, "before any URL"),
            ("http://h/a\n  name=x\n", 2, "unknown option"),
            ("http://h/a\n  out\n", 2, "name=value"),
            ("http://h/a\n  out=\n", 2, "no usable file name"),
            ("http://h/a\n  out=..\n", 2, "no usable file name"),
            ("http://h/a\n  out=.\n", 2, "no usable file name"),
            ("http://h/a\n  out=/\n", 2, "no usable file name"),
            ("http://h/a\n  out=a\n  out=b\n", 3, "twice"),
            ("http://h/a\n  checksum=sha-256=00\n", 2, "hex digits"),
            (
                "http://h/a\n  checksum=md5=00\n",
                2,
                "unknown checksum algorithm",
            ),
            ("http://h/a\n\n\n  checksum=\n", 4, "ALGO=HEX"),
        ] {
            let error = read(text).unwrap_err();
            assert!(
                error.starts_with(&format!("list:{line}: ")),
                "{text:?}: {error}"
            );
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:8080/a").is_ok());
        assert!(check_url("ftp://x/").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
    }
}

/// Hostile input files: any text either reads as http(s) URLs with safe
/// options, or is refused with a message naming its line; nothing panics.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("http://127.0.0.1/a.bin".to_owned()),
            Just("https://localhost:8443/b".to_owned()),
            Just("  out=../../etc/passwd".to_owned()),
            Just("  out=".to_owned()),
            Just("\tchecksum=sha-256=00".to_owned()),
            Just("  checksum=sha-256=".to_owned() + &"ab".repeat(32)),
            Just("# comment".to_owned()),
            Just("file:///etc/passwd".to_owned()),
            "\\PC{0,30}",
            "[ \t]{1,3}[a-z]{0,8}=\\PC{0,20}",
        ]
    }

    proptest! {
        #[test]
        fn input_files_never_panic(lines in proptest::collection::vec(line(), 0..20)) {
            let text = lines.join("\n");
            match read_input("list", text.as_bytes()) {
                Ok(entries) => {
                    for entry in entries {
                        prop_assert!(matches!(entry.url.scheme(), "http" | "https"));
                        if let Some(out) = &entry.out {
                            prop_assert!(!out.is_empty() && !out.contains('/'), "{out:?}");
                            prop_assert!(out != "." && out != "..");
                        }
                    }
                }
                Err(error) => prop_assert!(error.0.starts_with("list:"), "{}", error.0),
            }
        }
    }
}
