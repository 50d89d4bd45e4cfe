//! kill -9 never costs data: the downloader with `--continue` on 200 files
//! (1 byte to 8 MiB) is killed with SIGKILL at 20 random moments and run
//! again each time, then once more to the end. After every kill, a final
//! name holds only a complete, correct file and every `.part` file is a
//! correct prefix; every rerun asks the server for each file from exactly
//! the bytes already on disk (its `Range` starts), so what the server sent
//! beyond the files' total is only what a kill lost in flight (bounded per
//! file; none in the last run). The server sends each body at 512 KiB/s, so
//! kills land mid-transfer (the last run, at 8 MiB/s, takes a few seconds).
//!
//! The sizes, contents and kill moments come from one seed, printed, fixed
//! unless `UVCURL_KILL9_SEED` (a number) asks for another.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::download::{finish, signal, start};
use crate::support::harness::shared;
use crate::support::{sha256_hex, wait_until, Served, TempDir, ThrottledFiles};

const FILES: usize = 200;
/// Files of 4–8 MiB (so that the runs that are killed cannot finish the
/// whole set at [`RATE`]); the others have up to 384 KiB.
const LARGE_FILES: usize = 8;
const KILLS: usize = 20;
/// Each body's rate at the server.
const RATE: u64 = 512 * 1024;
/// Each body's rate in the last run (not killed).
const LAST_RUN_RATE: u64 = 8 << 20;
/// Kill moments, in ms after the first request of a run reached the server
/// (so that a slow process start on a busy machine does not make them land
/// before any transfer).
const KILL_AFTER_MS: std::ops::RangeInclusive<u64> = 50..=350;
/// Most bytes of one file a kill may lose: sent by the server but not yet
/// on disk (the downloader's 64 KiB write buffer, libcurl's receive buffer,
/// the socket buffers, which hold more while a busy machine keeps the
/// downloader from reading: 4 s at [`RATE`]).
const MAX_LOST_PER_FILE: u64 = 2 << 20;
/// The contents are slices of one random pool.
const POOL: usize = 16 << 20;

fn seed() -> u64 {
    std::env::var("UVCURL_KILL9_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6b11_1009)
}

/// Bytes of each file on disk, by final name: its `.part` file's length,
/// or its final file's, or 0.
type OnDisk = BTreeMap<String, u64>;

#[test]
fn kill_9_at_20_random_moments_never_costs_data() {
    let _fds = shared();
    let seed = seed();
    println!("kill -9: UVCURL_KILL9_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pool = vec![0u8; POOL];
    rng.fill(&mut pool);
    let pool = Bytes::from(pool);
    let large: HashSet<usize> = rng
        .choose_multiple(0..FILES, LARGE_FILES)
        .into_iter()
        .collect();
    let files: BTreeMap<String, Bytes> = (0..FILES)
        .map(|i| {
            let len = if large.contains(&i) {
                rng.usize(4 << 20..=8 << 20)
            } else {
                rng.usize(1..=384 << 10)
            };
            let at = rng.usize(0..=POOL - len);
            (format!("{i:03}.bin"), pool.slice(at..at + len))
        })
        .collect();
    let total: u64 = files.values().map(|f| f.len() as u64).sum();
    let routes = files
        .iter()
        .map(|(name, body)| (format!("/f/{name}"), body.clone()))
        .collect();
    let server = ThrottledFiles::start(routes, RATE);
    let work = TempDir::new("uvcurl-kill9");
    let out = work.join("out");
    let list = work.join("urls.txt");
    let urls: String = files
        .keys()
        .map(|name| server.url(&format!("/f/{name}")) + "\n")
        .collect();
    fs::write(&list, urls).expect("write the URL list");
    let (list, out_str) = (list.to_str().expect("UTF-8"), out.to_str().expect("UTF-8"));
    let args = ["-i", list, "-o", out_str, "-c", "-q", "-j", "16"];

    crate::download::downloader(); // built before the clock starts
    let started = Instant::now();
    let mut verified = HashSet::new();
    let mut on_disk: OnDisk = files.keys().map(|name| (name.clone(), 0)).collect();
    let (mut served_total, mut lost_total, mut cut_kills) = (0, 0, 0);
    for kill in 1..=KILLS {
        let child = start(&args, None);
        let first = wait_until(Duration::from_secs(30), || server.logged() > 0);
        assert!(first, "run {kill} sent no request in 30 s");
        thread::sleep(Duration::from_millis(rng.u64(KILL_AFTER_MS)));
        signal(child.id(), libc::SIGKILL);
        let run = finish(child, &args);
        assert_eq!(
            run.code, None,
            "run {kill} ended before its kill (more data or a lower rate needed): {run:#?}"
        );
        let log = quiet_log(&server);
        let after = check_dir(&out, &files, &mut verified);
        let (served, lost) = check_run(&log, &on_disk, &after, false);
        served_total += served;
        lost_total += lost;
        if log.iter().any(|s| cut_short(s, &files)) {
            cut_kills += 1;
        }
        on_disk = after;
    }
    // The last run checks the same, only sooner.
    server.set_rate(LAST_RUN_RATE);
    let kill_phase = started.elapsed();
    let run = finish(start(&args, None), &args);
    assert_eq!(run.code, Some(0), "the last run: {run:#?}");
    let log = quiet_log(&server);
    let after = check_dir(&out, &files, &mut verified);
    let (served, _) = check_run(&log, &on_disk, &after, true);
    served_total += served;
    println!(
        "kill -9: {KILLS} kills ({cut_kills} cut a body short), {FILES} files, {total} bytes; \
         served {served_total} ({lost_total} lost with kills); kills over after {kill_phase:?}, \
         last run over after {:?}",
        started.elapsed()
    );
    // Every file complete under its final name, no `.part` left.
    let mut names: Vec<String> = fs::read_dir(&out)
        .expect("read the output directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, files.keys().cloned().collect::<Vec<_>>());
    for (name, body) in &files {
        let saved = fs::read(out.join(name)).expect("a saved file");
        assert_eq!(sha256_hex(&saved), sha256_hex(body), "{name}");
    }
    assert_eq!(served_total, total + lost_total);
    assert!(
        cut_kills >= KILLS / 2,
        "only {cut_kills} of {KILLS} kills cut a body short"
    );
}

/// The server's log of a run that ended, once every body it was sending
/// was dropped (so the byte counts are final).
fn quiet_log(server: &ThrottledFiles) -> Vec<Served> {
    assert!(
        wait_until(Duration::from_secs(10), || server.active_bodies() == 0),
        "bodies still being sent after the downloader ended"
    );
    server.take_log()
}

/// Whether the body of `served` was not sent completely.
fn cut_short(served: &Served, files: &BTreeMap<String, Bytes>) -> bool {
    let len = files[name_of(&served.path)].len() as u64;
    let wanted = len.saturating_sub(served.start);
    let sent = served.sent.load(std::sync::atomic::Ordering::SeqCst);
    served.status / 100 == 2 && sent < wanted
}

/// `/f/NNN.bin` → `NNN.bin`.
fn name_of(path: &str) -> &str {
    path.strip_prefix("/f/").expect("a file path")
}

/// Checks what a run left in `out`: under a final name only a complete,
/// correct file (compared in full the first time it is seen); every `.part`
/// file a correct prefix; nothing else. Returns the bytes on disk per file.
fn check_dir(
    out: &Path,
    files: &BTreeMap<String, Bytes>,
    verified: &mut HashSet<String>,
) -> OnDisk {
    let mut on_disk: OnDisk = files.keys().map(|name| (name.clone(), 0)).collect();
    let mut finals = HashSet::new();
    let Ok(entries) = fs::read_dir(out) else {
        return on_disk; // not created yet
    };
    for entry in entries {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let len = entry.metadata().expect("metadata").len();
        if let Some(base) = name.strip_suffix(".part") {
            let body = files
                .get(base)
                .unwrap_or_else(|| panic!("unexpected {name}"));
            assert!(len <= body.len() as u64, "{name}: {len} bytes, too long");
            let data = fs::read(entry.path()).expect("read a part file");
            assert!(data[..] == body[..data.len()], "{name} is not a prefix");
            assert!(on_disk[base] == 0, "{base} and its .part both exist");
            on_disk.insert(base.to_owned(), len);
        } else {
            let body = files
                .get(&name)
                .unwrap_or_else(|| panic!("unexpected {name}"));
            assert_eq!(len, body.len() as u64, "{name} is incomplete");
            if verified.insert(name.clone()) {
                let data = fs::read(entry.path()).expect("read a final file");
                assert!(data[..] == body[..], "{name} differs");
            }
            assert!(on_disk[&name] == 0, "{name} and its .part both exist");
            finals.insert(name.clone());
            on_disk.insert(name, len);
        }
    }
    // A file once complete stays so.
    for name in verified.iter() {
        assert!(finals.contains(name), "{name} was complete and is gone");
    }
    on_disk
}

/// Checks a run's requests against the bytes on disk before and after it:
/// each file's first request starts at the bytes on disk before (a full
/// file's at its end: a `416`), none earlier; what the server sent for a
/// file covers what was added to it, and at most [`MAX_LOST_PER_FILE`] more
/// (none when `last`). Returns the bytes sent and the bytes lost.
fn check_run(log: &[Served], before: &OnDisk, after: &OnDisk, last: bool) -> (u64, u64) {
    let mut by_file: HashMap<&str, Vec<&Served>> = HashMap::new();
    for served in log {
        by_file
            .entry(name_of(&served.path))
            .or_default()
            .push(served);
    }
    let (mut sent_total, mut lost_total) = (0, 0);
    for (name, &was) in before {
        let now = after[name];
        assert!(now >= was, "{name}: {was} bytes on disk became {now}");
        let requests = by_file.remove(name.as_str()).unwrap_or_default();
        if let Some(first) = requests.first() {
            assert_eq!(
                first.start, was,
                "{name}: asked from {} with {was} on disk",
                first.start
            );
        }
        for request in &requests {
            assert!(
                request.start >= was,
                "{name}: fetched again from {}",
                request.start
            );
        }
        let sent: u64 = requests
            .iter()
            .map(|r| r.sent.load(std::sync::atomic::Ordering::SeqCst))
            .sum();
        let added = now - was;
        assert!(sent >= added, "{name}: {added} bytes added, {sent} sent");
        let lost = sent - added;
        let limit = if last { 0 } else { MAX_LOST_PER_FILE };
        assert!(
            lost <= limit,
            "{name}: {lost} bytes sent and lost (last run: {last})"
        );
        sent_total += sent;
        lost_total += lost;
    }
    assert!(
        by_file.is_empty(),
        "requests for unknown files: {by_file:?}"
    );
    (sent_total, lost_total)
}
