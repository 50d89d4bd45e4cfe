//! The state file of a segmented download, `NAME.part.state`: which URL and
//! which version of the file (length and validator) the `.part` holds, and
//! how far each segment got. It is what lets `--continue` fetch only the
//! missing bytes, and it is always replaced atomically (written beside it,
//! then renamed), so a crash leaves either the old or the new state.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::output;

/// Version of the format below; any other is ignored (the file starts over).
const VERSION: u64 = 1;

/// What identifies one version of a file on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validator {
    /// The `ETag`, as sent.
    pub etag: Option<String>,
    /// The `Last-Modified` date, as sent.
    pub last_modified: Option<String>,
}

impl Validator {
    /// Whether `now` (the server's answer today) is the version `self` was
    /// recorded from: the ETags must agree when either has one, else the
    /// dates when either has one. With neither, only the length (checked by
    /// the caller) vouches for it, as with a plain `--continue`.
    pub fn same_version(&self, now: &Validator) -> bool {
        if self.etag.is_some() || now.etag.is_some() {
            return self.etag == now.etag;
        }
        self.last_modified == now.last_modified
    }
}

/// One byte range of the file: `start..end`, of which `start..done` is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// One past the last byte written (`start..=end`).
    pub done: u64,
}

/// The recorded state of a `.part` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitState {
    /// The URL asked for (before redirects).
    pub url: String,
    /// The file's length.
    pub total: u64,
    /// The version of the file.
    pub validator: Validator,
    /// The segments, in order, covering `0..total`.
    pub spans: Vec<Span>,
}

impl SplitState {
    /// The state file of the `.part` file `part`.
    pub fn path_for(part: &Path) -> PathBuf {
        let mut name = part.as_os_str().to_owned();
        name.push(".state");
        PathBuf::from(name)
    }

    /// Reads the state file at `path`; `None` if there is none, or it is
    /// unreadable, of another version, or inconsistent (segments that do
    /// not tile `0..total`).
    pub fn load(path: &Path) -> Option<SplitState> {
        let meta = fs::symlink_metadata(path).ok()?;
        if !meta.is_file() || meta.len() > 1 << 20 {
            return None;
        }
        let value: Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        SplitState::from_json(&value)
    }

    fn from_json(value: &Value) -> Option<SplitState> {
        if value.get("version")?.as_u64()? != VERSION {
            return None;
        }
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let mut spans = Vec::new();
        for span in value.get("segments")?.as_array()? {
            let field = |key: &str| span.get(key).and_then(Value::as_u64);
            spans.push(Span {
                start: field("start")?,
                end: field("end")?,
                done: field("done")?,
            });
        }
        let state = SplitState {
            url: text("url")?,
            total: value.get("total")?.as_u64()?,
            validator: Validator {
                etag: text("etag"),
                last_modified: text("last_modified"),
            },
            spans,
        };
        state.is_consistent().then_some(state)
    }

    /// Whether the segments tile `0..total` in order, each with its done
    /// offset inside it.
    fn is_consistent(&self) -> bool {
        let mut at = 0;
        for span in &self.spans {
            if span.start != at || span.end <= span.start {
                return false;
            }
            if span.done < span.start || span.done > span.end {
                return false;
            }
            at = span.end;
        }
        !self.spans.is_empty() && at == self.total
    }

    /// Bytes already on disk.
    pub fn done_bytes(&self) -> u64 {
        self.spans.iter().map(|s| s.done - s.start).sum()
    }

    /// Writes the state to `path` atomically: to `path.tmp` first (replacing
    /// whatever is there, never writing through a link), then renamed.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let segments: Vec<Value> = self
            .spans
            .iter()
            .map(|s| json!({"start": s.start, "end": s.end, "done": s.done}))
            .collect();
        let value = json!({
            "version": VERSION,
            "url": self.url,
            "total": self.total,
            "etag": self.validator.etag,
            "last_modified": self.validator.last_modified,
            "segments": segments,
        });
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        output::discard(&tmp)?;
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(value.to_string().as_bytes())?;
        drop(file);
        fs::rename(&tmp, path)
    }

    /// Removes the state file at `path`, if any.
    pub fn remove(path: &Path) -> io::Result<()> {
        output::discard(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SplitState {
        SplitState {
            url: "http://h/f".to_owned(),
            total: 10,
            validator: Validator {
                etag: Some("\"x\"".to_owned()),
                last_modified: None,
            },
            spans: vec![
                Span {
                    start: 0,
                    end: 4,
                    done: 2,
                },
                Span {
                    start: 4,
                    end: 10,
                    done: 10,
                },
            ],
        }
    }

    #[test]
    fn saves_and_loads() {
        let dir = std::env::temp_dir().join(format!("split-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = SplitState::path_for(&dir.join("f.part"));
        assert!(path.ends_with("f.part.state"));
        state().save(&path).unwrap();
        assert_eq!(SplitState::load(&path), Some(state()));
        assert_eq!(state().done_bytes(), 8);
        SplitState::remove(&path).unwrap();
        assert_eq!(SplitState::load(&path), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn inconsistent_states_are_ignored() {
        for broken in [
            |s: &mut SplitState| s.total = 11,
            |s: &mut SplitState| s.spans[0].done = 5,
            |s: &mut SplitState| s.spans[1].start = 3,
            |s: &mut SplitState| s.spans.clear(),
        ] {
            let mut s = state();
            broken(&mut s);
            assert!(!s.is_consistent(), "{s:?}");
        }
        assert!(state().is_consistent());
        let mut other = serde_json::to_value(3).unwrap();
        assert_eq!(SplitState::from_json(&other), None);
        other = json!({"version": 2});
        assert_eq!(SplitState::from_json(&other), None);
    }

    #[test]
    fn validators() {
        let etag = |e: &str| Validator {
            etag: Some(e.to_owned()),
            last_modified: Some("Mon".to_owned()),
        };
        assert!(etag("a").same_version(&etag("a")));
        assert!(!etag("a").same_version(&etag("b")));
        let date = |d: &str| Validator {
            etag: None,
            last_modified: Some(d.to_owned()),
        };
        assert!(date("Mon").same_version(&date("Mon")));
        assert!(!date("Mon").same_version(&date("Tue")));
        assert!(!etag("a").same_version(&date("Mon")));
        assert!(Validator::default().same_version(&Validator::default()));
    }
}
