//! Output file names: suggested by the URL or by `Content-Disposition`, made
//! safe so that nothing can land outside the output directory, and made
//! unique within the run and against files already on disk.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

use crate::link::Link;

/// Longest file name produced, in bytes (a `.N` or `.part` suffix may follow).
pub const MAX_NAME_BYTES: usize = 200;

/// The name used when neither the URL nor the server suggests one.
pub const FALLBACK_NAME: &str = "index.html";

/// The suffix of a file being downloaded.
pub const PART_SUFFIX: &str = ".part";

/// Characters that are not allowed in file names on some systems.
const RESERVED: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// The name a URL suggests: its last path segment, percent-decoded and
/// sanitized; [`FALLBACK_NAME`] when that leaves nothing.
pub fn name_from_url(url: &Link) -> String {
    let path = url.path();
    let last = path.rfind('/').map_or(path, |slash| &path[slash + 1..]);
    let sanitized = if last.contains('%') {
        sanitize(&percent_decode_str(last).decode_utf8_lossy())
    } else {
        sanitize(last) // nothing to decode
    };
    sanitized.unwrap_or_else(|| FALLBACK_NAME.to_owned())
}

/// The sanitized `filename*=` (preferred) or `filename=` of a
/// `Content-Disposition` header value, if it has a usable one.
pub fn name_from_content_disposition(value: &str) -> Option<String> {
    let params = disposition_params(value);
    let find = |key: &str| {
        params
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    };
    let extended = find("filename*").and_then(decode_extended_value);
    let raw = extended.or_else(|| find("filename").map(str::to_owned))?;
    sanitize(&raw)
}

/// Makes a suggested name safe to join to the output directory: control
/// characters (NUL included) are dropped, only the last path component
/// survives (so `..`, `/`, `\` and absolute paths cannot escape), characters
/// some systems forbid become `_`, and the length is capped at
/// [`MAX_NAME_BYTES`] (keeping a short extension). `None` if nothing usable
/// is left.
pub fn sanitize(raw: &str) -> Option<String> {
    if is_plain(raw) {
        return Some(raw.to_owned());
    }
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if RESERVED.contains(&c) { '_' } else { c })
        .collect();
    let last = cleaned
        .rsplit(['/', '\\'])
        .map(str::trim)
        .find(|part| !part.is_empty() && *part != "." && *part != "..")?;
    // A name Windows reserves for a device (CON, NUL, COM1.txt...) would
    // not be a file there: an underscore in front keeps it one.
    if is_device_name(last) {
        return Some(cap_length(&format!("_{last}")));
    }
    Some(cap_length(last))
}

/// Whether `name` is already safe as it is, as most names are: short,
/// only ASCII letters, digits, `-`, `_` and `.`, not starting with a dot
/// (so neither `.` nor `..`), and no device name.
fn is_plain(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_BYTES
        && bytes[0] != b'.'
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !is_device_name(name)
}

/// Whether `name` is one Windows reserves for a device, with or without an
/// extension, in any case: CON, PRN, AUX, NUL, COM0-9, LPT0-9.
fn is_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    let bytes = stem.as_bytes();
    match bytes.len() {
        3 => ["CON", "PRN", "AUX", "NUL"]
            .iter()
            .any(|device| stem.eq_ignore_ascii_case(device)),
        4 => {
            (bytes[..3].eq_ignore_ascii_case(b"COM") || bytes[..3].eq_ignore_ascii_case(b"LPT"))
                && bytes[3].is_ascii_digit()
        }
        _ => false,
    }
}

/// Shortens `name` to at most [`MAX_NAME_BYTES`], keeping an extension of up
/// to 16 bytes, without splitting a UTF-8 character.
fn cap_length(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_owned();
    }
    let extension = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= 16 => &name[dot..],
        _ => "",
    };
    let mut end = MAX_NAME_BYTES - extension.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{extension}", &name[..end])
}

/// The `name=value` parameters after the disposition type, values unquoted.
fn disposition_params(value: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let Some((_, mut rest)) = value.split_once(';') else {
        return params;
    };
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        let Some((name, after)) = rest.split_once('=') else {
            return params;
        };
        let (value, after) = match after.trim_start().strip_prefix('"') {
            Some(quoted) => take_quoted(quoted),
            None => {
                let (token, after) = after.split_once(';').unwrap_or((after, ""));
                (token.to_owned(), after)
            }
        };
        params.push((name.trim().to_owned(), value.trim().to_owned()));
        rest = after;
    }
}

/// Reads a quoted string (after its opening quote) with backslash escapes;
/// returns it and the text after the closing quote.
fn take_quoted(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &text[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            _ => value.push(c),
        }
    }
    (value, "")
}

/// Decodes an RFC 8187 extended value such as `UTF-8''na%C3%AFve.txt`.
fn decode_extended_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let charset = parts.next()?;
    let _language = parts.next()?;
    let bytes: Vec<u8> = percent_decode_str(parts.next()?).collect();
    if charset.eq_ignore_ascii_case("utf-8") {
        Some(String::from_utf8_lossy(&bytes).into_owned())
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    } else {
        None
    }
}

/// The `.part` file name that goes with a final name.
pub fn part_name(name: &str) -> String {
    let mut part = String::with_capacity(name.len() + PART_SUFFIX.len());
    part.push_str(name);
    part.push_str(PART_SUFFIX);
    part
}

/// Hands out unique names in one output directory.
///
/// A name is free when neither it nor its `.part` is claimed in this run.
/// Only with `--continue` is the disk probed up front (the `.part` to resume
/// must be found): then a name is also taken by a directory or other
/// non-file of that name (unless overwriting; an earlier run's regular file
/// is checked instead, see `Attempt::new`) or a `.part` of it that is not a
/// regular file. Otherwise the disk decides later, at no extra cost: the
/// `.part` is created with `O_EXCL` and the final name taken with a rename
/// that does not replace, and a clash there asks for [`Names::claim_next`].
/// Taken names get `.1`, `.2`, ...
#[derive(Debug)]
pub struct Names {
    dir: PathBuf,
    overwrite: bool,
    /// Whether to look at the disk up front (`--continue`).
    probe: bool,
    claimed: HashSet<String>,
    /// How many claimed names end in `.part` (usually none: then no name
    /// can clash with a claimed one as its `.part`, and that lookup is
    /// skipped).
    claimed_parts: usize,
    /// The name asked for, for each claimed name that got a `.N` suffix.
    wanted: HashMap<String, String>,
    /// Room to spell a candidate's `.part` name in, reused.
    scratch: String,
}

impl Names {
    /// A registry for `dir`.
    pub fn new(dir: &Path, overwrite: bool, resume: bool) -> Names {
        Names {
            dir: dir.to_owned(),
            overwrite,
            probe: resume,
            claimed: HashSet::new(),
            claimed_parts: 0,
            wanted: HashMap::new(),
            scratch: String::new(),
        }
    }

    /// Makes room for `names` more claims at once (growing one rehash at a
    /// time costs more than the claims).
    pub fn reserve(&mut self, names: usize) {
        self.claimed.reserve(names);
    }

    /// Claims `wanted`, or the first free `wanted.N`, and returns it.
    pub fn claim(&mut self, wanted: &str) -> String {
        self.claim_owned(wanted.to_owned())
    }

    /// [`Names::claim`] of a name the caller has no more use for.
    pub fn claim_owned(&mut self, wanted: String) -> String {
        if !self.probe && !self.clashes_as_part(&wanted) {
            // The usual case: one lookup that claims the name if it is free.
            if self.insert(wanted.clone()) {
                return wanted;
            }
        } else if self.is_free(&wanted) {
            self.insert(wanted.clone());
            return wanted;
        }
        let wanted = wanted.as_str();
        let name = (1u64..)
            .map(|n| format!("{wanted}.{n}"))
            .find(|candidate| self.is_free(candidate))
            .unwrap_or_else(|| wanted.to_owned());
        self.insert(name.clone());
        self.wanted.insert(name.clone(), wanted.to_owned());
        name
    }

    /// Adds `name` to the claimed names; false if it was claimed already.
    fn insert(&mut self, name: String) -> bool {
        let part = name.ends_with(PART_SUFFIX);
        let added = self.claimed.insert(name);
        if added && part {
            self.claimed_parts += 1;
        }
        added
    }

    /// Claims the next free name after `taken`, a claimed name found taken
    /// on disk: `a` gives `a.1`, and `a.1` then `a.2`. `taken` stays
    /// claimed (something else is there).
    pub fn claim_next(&mut self, taken: &str) -> String {
        let wanted = self
            .wanted
            .get(taken)
            .cloned()
            .unwrap_or_else(|| taken.to_owned());
        self.claim(&wanted)
    }

    /// Gives a claimed name back.
    pub fn release(&mut self, name: &str) {
        if self.claimed.remove(name) && name.ends_with(PART_SUFFIX) {
            self.claimed_parts -= 1;
        }
        self.wanted.remove(name);
    }

    /// Whether `candidate` may be used now: neither it nor its `.part` is
    /// claimed, and it is not the `.part` of a claimed name.
    fn is_free(&mut self, candidate: &str) -> bool {
        let clash = self.claimed.contains(candidate) || self.clashes_as_part(candidate);
        !clash && (!self.probe || self.free_on_disk(candidate))
    }

    /// Whether `candidate` is the `.part` of a claimed name, or its own
    /// `.part` is claimed.
    fn clashes_as_part(&mut self, candidate: &str) -> bool {
        let stem_claimed = candidate
            .strip_suffix(PART_SUFFIX)
            .is_some_and(|stem| self.claimed.contains(stem));
        if stem_claimed || self.claimed_parts == 0 {
            return stem_claimed;
        }
        let mut part = std::mem::take(&mut self.scratch);
        part.clear();
        part.push_str(candidate);
        part.push_str(PART_SUFFIX);
        let part_claimed = self.claimed.contains(&part);
        self.scratch = part;
        part_claimed
    }

    /// With `--continue`: nothing of that name but a regular file (which is
    /// checked, not replaced) unless overwriting, and any `.part` of it a
    /// regular file (to resume).
    fn free_on_disk(&self, candidate: &str) -> bool {
        let final_ok = match fs::symlink_metadata(self.dir.join(candidate)) {
            Ok(meta) => (self.overwrite && !meta.is_dir()) || meta.is_file(),
            Err(_) => true,
        };
        let part_ok = match fs::symlink_metadata(self.dir.join(part_name(candidate))) {
            Ok(meta) => meta.is_file(),
            Err(_) => true,
        };
        final_ok && part_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_inside() {
        assert_eq!(sanitize("CON").as_deref(), Some("_CON"));
        assert_eq!(sanitize("nul.tar.gz").as_deref(), Some("_nul.tar.gz"));
        assert_eq!(sanitize("com7").as_deref(), Some("_com7"));
        assert_eq!(sanitize("console").as_deref(), Some("console"));
        assert_eq!(sanitize("COM10").as_deref(), Some("COM10"));
        assert_eq!(sanitize("../../evil").as_deref(), Some("evil"));
        assert_eq!(sanitize("/etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(sanitize("..\\..\\win.ini").as_deref(), Some("win.ini"));
        assert_eq!(sanitize("evil/..").as_deref(), Some("evil"));
        assert_eq!(sanitize(".\u{7}.").as_deref(), None);
        assert_eq!(sanitize("a\0b\nc").as_deref(), Some("abc"));
        assert_eq!(sanitize("..").as_deref(), None);
        assert_eq!(sanitize("").as_deref(), None);
        let long = "x".repeat(300) + ".tar.gz";
        let capped = sanitize(&long).unwrap();
        assert_eq!(capped.len(), MAX_NAME_BYTES);
        assert!(capped.ends_with(".gz"));
    }

    #[test]
    fn names_are_unique_in_a_run_and_clashes_take_the_next() {
        let mut names = Names::new(Path::new("/nonexistent-dir"), false, false);
        assert_eq!(names.claim("a"), "a");
        assert_eq!(names.claim("a"), "a.1");
        // Neither the part file of a claimed name nor a name whose part
        // file would be a claimed name.
        assert_eq!(names.claim("a.part"), "a.part.1");
        assert_eq!(names.claim("b.part"), "b.part");
        assert_eq!(names.claim("b"), "b.1");
        // Taken on disk: `a.1` was claimed from `a`, so its successor is `a.2`.
        assert_eq!(names.claim_next("a.1"), "a.2");
        assert_eq!(names.claim_next("a.2"), "a.3");
        assert_eq!(names.claim("c"), "c");
        assert_eq!(names.claim_next("c"), "c.1");
        names.release("a.3");
        assert_eq!(names.claim("a"), "a.3");
        // Once the only claimed `.part` name is given back, its stem is free
        // again; claimed again, it blocks the stem again.
        names.release("b.part");
        assert_eq!(names.claim("b"), "b");
        assert_eq!(names.claim("d.part"), "d.part");
        assert_eq!(names.claim("d"), "d.1");
    }

    #[test]
    fn url_names() {
        let url = |s| Link::parse(s).unwrap();
        assert_eq!(name_from_url(&url("http://h/a/b.txt?x=1")), "b.txt");
        assert_eq!(name_from_url(&url("http://h/")), FALLBACK_NAME);
        assert_eq!(name_from_url(&url("http://h/d/")), FALLBACK_NAME);
        assert_eq!(name_from_url(&url("http://h/..%2F..%2Fevil")), "evil");
        assert_eq!(name_from_url(&url("http://h/na%C3%AFve%20x")), "naïve x");
    }

    #[test]
    fn content_disposition() {
        let cd = name_from_content_disposition;
        assert_eq!(
            cd("attachment; filename=\"r e.txt\"").as_deref(),
            Some("r e.txt")
        );
        assert_eq!(
            cd("attachment; filename=plain.bin").as_deref(),
            Some("plain.bin")
        );
        assert_eq!(
            cd("attachment; filename=\"x.txt\"; filename*=UTF-8''na%C3%AFve.txt").as_deref(),
            Some("naïve.txt")
        );
        assert_eq!(
            cd("attachment; filename=\"../../evil\"").as_deref(),
            Some("evil")
        );
        assert_eq!(
            cd("attachment; filename=\"a\\\"b\"").as_deref(),
            Some("a_b")
        );
        assert_eq!(cd("inline"), None);
    }
}

/// Hostile bytes: whatever a server or a user hands in, a name is either
/// refused or a single safe component inside the output directory.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Component, Path};

    /// What every produced name must be.
    fn check_safe(name: &str) -> Result<(), TestCaseError> {
        prop_assert!(!name.is_empty());
        prop_assert!(name != "." && name != "..", "{name:?}");
        prop_assert!(!name.contains('/') && !name.contains('\\'), "{name:?}");
        prop_assert!(!name.chars().any(char::is_control), "{name:?}");
        prop_assert!(!name.contains(RESERVED), "{name:?}");
        prop_assert!(name.len() <= MAX_NAME_BYTES, "{} bytes", name.len());
        prop_assert!(!is_device_name(name), "{name:?}");
        let out = Path::new("/srv/out");
        let joined = out.join(name);
        prop_assert_eq!(joined.parent(), Some(out));
        let components: Vec<Component> = Path::new(name).components().collect();
        prop_assert!(matches!(components[..], [Component::Normal(_)]), "{name:?}");
        // The .part name is as safe.
        let part = part_name(name);
        let joined_part = out.join(&part);
        prop_assert_eq!(joined_part.parent(), Some(out));
        Ok(())
    }

    /// Strings rich in what attacks names: separators, dots, controls,
    /// reserved characters, quotes, percent signs and non-ASCII.
    fn hostile() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("/".to_owned()),
                Just("\\".to_owned()),
                Just("..".to_owned()),
                Just(".".to_owned()),
                Just("\0".to_owned()),
                Just("\"".to_owned()),
                Just(";".to_owned()),
                Just("%2F".to_owned()),
                Just("%00".to_owned()),
                Just("filename=".to_owned()),
                Just("filename*=UTF-8''".to_owned()),
                Just("CON".to_owned()),
                Just("nul.txt".to_owned()),
                Just("com1".to_owned()),
                "[\\x00-\\x7f]{0,4}",
                "\\PC{0,3}",
                "[a-z]{1,300}",
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn sanitize_never_yields_an_unsafe_name(raw in hostile()) {
            if let Some(name) = sanitize(&raw) {
                check_safe(&name)?;
            }
        }

        #[test]
        fn content_disposition_never_yields_an_unsafe_name(value in hostile()) {
            for header in [value.clone(), format!("attachment; filename=\"{value}\""),
                           format!("attachment; filename*=UTF-8''{value}")] {
                if let Some(name) = name_from_content_disposition(&header) {
                    check_safe(&name)?;
                }
            }
        }

        #[test]
        fn url_names_are_always_safe_and_never_empty(segment in hostile()) {
            let text = format!("http://127.0.0.1/dir/{}", segment.replace(['#', '?'], "_"));
            if let Ok(url) = Link::parse(&text) {
                check_safe(&name_from_url(&url))?;
            }
        }
    }

    proptest! {
        /// Whatever is claimed and given back, in any order, the claimed
        /// names stay distinct, and none is the `.part` of another.
        #[test]
        fn claimed_names_never_clash(ops in proptest::collection::vec(
            (0..6usize, any::<bool>()), 0..40
        )) {
            const WANTED: [&str; 6] = ["a", "a.part", "a.part.part", "b", "b.part", "a.1"];
            let mut names = Names::new(Path::new("/srv/out"), false, false);
            let mut held: Vec<String> = Vec::new();
            for (pick, give_back) in ops {
                if give_back && !held.is_empty() {
                    let name = held.remove(pick % held.len());
                    names.release(&name);
                } else {
                    held.push(names.claim(WANTED[pick]));
                }
                for (i, name) in held.iter().enumerate() {
                    for other in &held[i + 1..] {
                        prop_assert_ne!(name, other);
                    }
                    prop_assert!(!held.contains(&part_name(name)), "{held:?}");
                }
            }
        }
    }
}
