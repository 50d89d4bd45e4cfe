//! `--split N`: a file fetched as ranged segments in parallel, checked byte
//! for byte, with the requests the loopback `FileServer` saw (ranges, bytes
//! served, connections, HTTP versions).

use super::*;

use crate::support::tls::TestPki;

const MIB: usize = 1024 * 1024;

/// Serves `body` at `/big.bin` (with `route` adjusting it) from a fresh server.
fn serve_big(body: &[u8], honour_range: bool, route: impl FnOnce(&mut Route)) -> FileServer {
    let mut big = Route::file(body.to_vec());
    route(&mut big);
    let routes = HashMap::from([("/big.bin".to_owned(), big)]);
    FileServer::start(routes, honour_range).expect("start the file server")
}

/// The segment ranges asked for (`bytes=FIRST-LAST`, the probe's `0-0`
/// left out), sorted, as `(first, last)`.
fn segment_ranges(server: &FileServer) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = server
        .ranges()
        .iter()
        .filter(|(_, range)| range != "bytes=0-0")
        .map(|(_, range)| parse_closed(range))
        .collect();
    ranges.sort();
    ranges
}

/// `(first, last)` of `bytes=FIRST-LAST`.
fn parse_closed(range: &str) -> (u64, u64) {
    let (first, last) = range
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .unwrap_or_else(|| panic!("not a closed range: {range}"));
    (first.parse().expect("first"), last.parse().expect("last"))
}

/// Checks that `ranges` tile `0..len` exactly.
fn assert_tiles(ranges: &[(u64, u64)], len: usize) {
    let mut at = 0;
    for &(first, last) in ranges {
        assert_eq!(first, at, "{ranges:?}");
        at = last + 1;
    }
    assert_eq!(at, len as u64, "{ranges:?}");
}

/// `out/big.bin` holds `body`, and nothing else is left in `out`.
fn assert_saved(out: &TempDir, body: &[u8]) {
    let saved = fs::read(out.join("big.bin")).expect("saved file");
    assert!(saved == body, "big.bin differs ({} bytes)", saved.len());
    assert_eq!(files_under(out.path()), vec![PathBuf::from("big.bin")]);
}

/// The bytes already on disk according to `big.bin.part.state`.
fn done_in_state(out: &TempDir) -> u64 {
    let text = fs::read_to_string(out.join("big.bin.part.state")).expect("state file");
    let state: serde_json::Value = serde_json::from_str(&text).expect("JSON state");
    state["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["done"].as_u64().expect("done") - s["start"].as_u64().expect("start"))
        .sum()
}

#[test]
fn split_8_and_4_over_http1_are_byte_exact_and_tile_the_file() {
    let _fds = shared();
    for (split, len, seed) in [(8, 9 * MIB + 123, 81), (4, 4 * MIB + 7, 82)] {
        let body = body_bytes(len, seed);
        let server = serve_big(&body, true, |_| {});
        let out = TempDir::new("uvcurl-download-split");
        let n = split.to_string();
        let result = run(&[&server.url("/big.bin"), "-o", out.str(), "--split", &n]);
        assert_eq!(result.code, Some(0), "{result:#?}");
        assert_saved(&out, &body);
        let ranges = segment_ranges(&server);
        assert_eq!(ranges.len(), split, "{ranges:?}");
        assert_tiles(&ranges, len);
        // The probe, then one request per segment, each on a connection of
        // its own while they run at once (one reuses the probe's).
        assert_eq!(server.hits("/big.bin"), split as u32 + 1);
        assert_eq!(server.connections(), split as u64);
    }
}

#[test]
fn several_split_files_at_two_at_a_time() {
    let _fds = shared();
    let files: Vec<(String, Vec<u8>)> = [3 * MIB + 1, 5, MIB, 2 * MIB + 3, 4 * MIB]
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("/f{i}.bin"), body_bytes(len, 93 + i as u64)))
        .collect();
    let routes = files
        .iter()
        .map(|(path, body)| (path.clone(), Route::file(body.clone())))
        .collect();
    let server = FileServer::start(routes, true).expect("start the file server");
    let out = TempDir::new("uvcurl-download-split-many");
    let urls: Vec<String> = files.iter().map(|(path, _)| server.url(path)).collect();
    let list = url_file(&out, &urls);
    let dir = out.join("files");
    let dir = dir.to_str().expect("UTF-8");
    let result = run(&["-i", &list, "-o", dir, "-j", "2", "--split", "4"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    for (path, body) in &files {
        let saved = fs::read(out.join("files").join(&path[1..])).expect("saved file");
        assert!(saved == *body, "{path} differs");
        // The probe, then one segment per whole MiB (at least 1, at most 4).
        let segments = (body.len() / MIB).clamp(1, 4) as u32;
        assert_eq!(server.hits(path), 1 + segments, "{path}");
    }
    assert_eq!(files_under(&out.join("files")).len(), files.len());
}

#[test]
fn split_over_http2_uses_streams_of_one_connection() {
    let _fds = shared();
    let pki = TestPki::generate();
    let certs = TempDir::new("uvcurl-download-split-h2");
    fs::write(certs.join("ca.pem"), &pki.ca_pem).expect("write CA");
    let ca = certs.join("ca.pem");
    let body = body_bytes(6 * MIB + 5, 83);
    let routes = HashMap::from([("/big.bin".to_owned(), Route::file(body.clone()))]);
    let server = FileServer::start_tls(routes, true, pki.server_config.clone()).expect("start");
    let out = TempDir::new("uvcurl-download-split-h2-out");
    let ca = ca.to_str().expect("UTF-8");
    let url = server.url("/big.bin");
    let result = run(&[&url, "-o", out.str(), "--split", "4", "--cacert", ca]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&out, &body);
    assert_tiles(&segment_ranges(&server), body.len());
    assert_eq!(server.http2_requests(), 5, "probe + 4 segments over HTTP/2");
    assert_eq!(
        server.connections(),
        1,
        "the segments are streams of one connection"
    );
}

#[test]
fn split_falls_back_to_one_request_without_range_support() {
    let _fds = shared();
    let body = body_bytes(5 * MIB + 3, 84);
    let server = serve_big(&body, false, |_| {});
    let out = TempDir::new("uvcurl-download-split-norange");
    let result = run(&[&server.url("/big.bin"), "-o", out.str(), "--split", "8"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&out, &body);
    // The probe's answer (a 200) was the file itself.
    assert_eq!(server.hits("/big.bin"), 1);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.served(), body.len() as u64);
}

/// Runs `--split 4 -c --retries 0` against a server that drops the first
/// segment's connection halfway: the file fails, keeping `.part` and state.
fn interrupted_run(server: &FileServer, out: &TempDir, len: usize) -> u64 {
    let result = run(&[
        &server.url("/big.bin"),
        "-o",
        out.str(),
        "--split",
        "4",
        "-c",
        "--retries",
        "0",
    ]);
    assert_eq!(result.code, Some(1), "{result:#?}");
    assert!(!out.join("big.bin").exists(), "{result:#?}");
    let part = fs::metadata(out.join("big.bin.part")).expect("the .part file is kept");
    assert_eq!(part.len(), len as u64, "pre-sized to the full length");
    let done = done_in_state(out);
    assert!(done > 0 && done < len as u64, "{done} of {len}");
    done
}

/// Reruns `--split 4 -c -v` after an [`interrupted_run`].
fn resumed_run(server: &FileServer, out: &TempDir) -> Run {
    run(&[
        &server.url("/big.bin"),
        "-o",
        out.str(),
        "--split",
        "4",
        "-c",
        "-v",
    ])
}

#[test]
fn continue_fetches_only_the_missing_bytes_of_each_segment() {
    let _fds = shared();
    let body = body_bytes(4 * MIB + 11, 85);
    let server = serve_big(&body, true, |r| {
        r.faults = vec![Fault::Pass, Fault::DropMidBody];
        r.etag = Some("\"v1\"".to_owned());
    });
    let out = TempDir::new("uvcurl-download-split-resume");
    let done = interrupted_run(&server, &out, body.len());
    let served_before = server.served();
    let result = resumed_run(&server, &out);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&out, &body);
    assert!(result.stderr.contains("resumed big.bin"), "{result:#?}");
    let missing = body.len() as u64 - done;
    // The probe's one byte, then exactly the bytes the state said were missing.
    assert_eq!(server.served() - served_before, 1 + missing);
}

#[test]
fn continue_starts_over_when_the_validator_changed() {
    let _fds = shared();
    let old = body_bytes(4 * MIB + 11, 86);
    let server = serve_big(&old, true, |r| {
        r.faults = vec![Fault::Pass, Fault::DropMidBody];
        r.etag = Some("\"v1\"".to_owned());
    });
    let out = TempDir::new("uvcurl-download-split-changed");
    interrupted_run(&server, &out, old.len());
    // Same length, new content, new ETag.
    let new = body_bytes(old.len(), 87);
    let mut route = Route::file(new.clone());
    route.etag = Some("\"v2\"".to_owned());
    server.set_route("/big.bin", route);
    let served_before = server.served();
    let result = resumed_run(&server, &out);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert!(
        result.stderr.contains("changed on the server"),
        "{result:#?}"
    );
    assert_saved(&out, &new);
    assert_eq!(server.served() - served_before, 1 + new.len() as u64);
}

#[test]
fn a_segment_with_a_wrong_content_range_fails_the_file() {
    let _fds = shared();
    let body = body_bytes(4 * MIB, 88);
    let server = serve_big(&body, true, |r| {
        r.faults = vec![Fault::Pass, Fault::WrongRange];
    });
    let out = TempDir::new("uvcurl-download-split-wrong-range");
    let result = run(&[&server.url("/big.bin"), "-o", out.str(), "--split", "4"]);
    assert_eq!(result.code, Some(1), "{result:#?}");
    assert!(result.stderr.contains("Content-Range"), "{result:#?}");
    // Not retried (the server is wrong, not busy): the probe and at most the
    // four segments (the others are cancelled, maybe before they were sent).
    let hits = server.hits("/big.bin");
    assert!((2..=5).contains(&hits), "{hits} requests");
    assert_no_files(out.path());
}

#[test]
fn a_segment_of_another_version_of_the_file_fails_it() {
    let _fds = shared();
    let body = body_bytes(4 * MIB, 99);
    let server = serve_big(&body, true, |r| {
        r.etag = Some("\"v1\"".to_owned());
        r.faults = vec![Fault::Pass, Fault::OtherEtag];
    });
    let out = TempDir::new("uvcurl-download-split-other-etag");
    let result = run(&[&server.url("/big.bin"), "-o", out.str(), "--split", "4"]);
    assert_eq!(result.code, Some(1), "{result:#?}");
    assert!(
        result
            .stderr
            .contains("changed on the server during the download"),
        "{result:#?}"
    );
    assert_no_files(out.path());
}

#[test]
fn checksums_cover_the_whole_split_file() {
    let _fds = shared();
    let body = body_bytes(3 * MIB + 1, 89);
    let server = serve_big(&body, true, |_| {});
    let url = server.url("/big.bin");
    let good = TempDir::new("uvcurl-download-split-sum-ok");
    let sum = format!("sha-512={}", sha512_hex(&body));
    let result = run(&[&url, "-o", good.str(), "--split", "3", "--checksum", &sum]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&good, &body);

    let bad = TempDir::new("uvcurl-download-split-sum-bad");
    let wrong = format!("sha-256={}", "00".repeat(32));
    let result = run(&[
        &url,
        "-o",
        bad.str(),
        "--split",
        "3",
        "-c",
        "--checksum",
        &wrong,
    ]);
    assert_eq!(result.code, Some(1), "{result:#?}");
    let got = format!("got {}", sha256_hex(&body));
    assert!(result.stderr.contains(&got), "{result:#?}");
    // Even with --continue: the content is known to be bad.
    assert_no_files(bad.path());
}

#[test]
fn bad_split_values_are_usage_errors() {
    let _fds = shared();
    for value in ["0", "x", "-1", "65", ""] {
        let option = format!("--split={value}");
        let result = run(&[&option, "http://127.0.0.1:9/"]);
        assert_eq!(result.code, Some(2), "--split {value:?}: {result:#?}");
        assert!(result.stderr.contains("--split"), "{result:#?}");
    }
}

#[test]
fn ctrl_c_keeps_the_segments_for_continue() {
    let _fds = shared();
    let body = body_bytes(4 * MIB + 1, 90);
    // The server paces the probe and the four segments (640 KiB/s each):
    // libcurl 7.88 applies --max-speed only between reads, and a segment
    // of 1 MiB from loopback may come in one go.
    let server = serve_big(&body, true, |big| big.faults = vec![Fault::Slow; 5]);
    let out = TempDir::new("uvcurl-download-split-ctrl-c");
    let url = server.url("/big.bin");
    // 4 MiB at 512 KiB/s (128 KiB/s per segment) takes 8 s.
    let args = [
        &url,
        "-o",
        out.str(),
        "-c",
        "--split",
        "4",
        "--max-speed",
        "512K",
    ];
    let child = start(&args, None);
    let state = out.join("big.bin.part.state");
    let waited = std::time::Instant::now();
    while !state.exists() || done_in_state(&out) == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "no progress in the state file"
        );
        thread::sleep(Duration::from_millis(50));
    }
    signal(child.id(), libc::SIGINT);
    let result = finish(child, &args);
    assert_eq!(result.code, Some(130), "{result:#?}");
    assert!(result.stderr.contains("interrupted"), "{}", result.stderr);
    assert!(!out.join("big.bin").exists(), "a final file after Ctrl-C");
    let done = done_in_state(&out);
    assert!(done > 0 && done < body.len() as u64, "{done} bytes kept");

    // Without --split too: the state file says the .part holds segments.
    let served_before = server.served();
    let result = run(&[&url, "-o", out.str(), "-c"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&out, &body);
    let missing = body.len() as u64 - done;
    assert_eq!(server.served() - served_before, 1 + missing);
}

#[test]
fn a_plain_part_file_is_resumed_as_a_done_first_segment() {
    let _fds = shared();
    let body = body_bytes(6 * MIB + 9, 91);
    let server = serve_big(&body, true, |_| {});
    let out = TempDir::new("uvcurl-download-split-plain-part");
    let already = 2 * MIB + 1;
    fs::write(out.join("big.bin.part"), &body[..already]).expect("write part");
    let url = server.url("/big.bin");
    let result = run(&[&url, "-o", out.str(), "-c", "--split", "4"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&out, &body);
    let ranges = segment_ranges(&server);
    assert_eq!(ranges.len(), 4, "{ranges:?}");
    assert_eq!(ranges[0].0, already as u64);
    assert_eq!(server.served(), 1 + (body.len() - already) as u64);
}

#[test]
fn segments_ask_for_the_redirected_url_and_tiny_files_need_no_segments() {
    let _fds = shared();
    let body = body_bytes(3 * MIB, 92);
    let moved = Route {
        redirect: Some("/big.bin".to_owned()),
        ..Route::default()
    };
    let routes = HashMap::from([
        ("/big.bin".to_owned(), Route::file(body.clone())),
        ("/moved.bin".to_owned(), moved),
        ("/empty.bin".to_owned(), Route::file(Vec::new())),
        ("/one.bin".to_owned(), Route::file(b"1".to_vec())),
    ]);
    let server = FileServer::start(routes, true).expect("start the file server");
    let out = TempDir::new("uvcurl-download-split-redirect");
    let result = run(&[
        &server.url("/moved.bin"),
        &server.url("/empty.bin"),
        &server.url("/one.bin"),
        "-o",
        out.str(),
        "--split",
        "3",
    ]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert!(fs::read(out.join("moved.bin")).expect("saved") == body);
    assert_eq!(fs::read(out.join("empty.bin")).expect("saved").len(), 0);
    assert_eq!(
        server.hits("/moved.bin"),
        1,
        "only the probe was redirected"
    );
    assert_eq!(server.hits("/big.bin"), 4);
    // The empty file: the probe's 416, then one plain request.
    assert_eq!(server.hits("/empty.bin"), 2);
    // One byte: the probe's answer is the whole file.
    assert_eq!(fs::read(out.join("one.bin")).expect("saved"), b"1");
    assert_eq!(server.hits("/one.bin"), 1);
    let names = ["empty.bin", "moved.bin", "one.bin"].map(PathBuf::from);
    assert_eq!(files_under(out.path()), names);
}

#[test]
fn an_idle_connection_takes_over_half_of_a_slow_segment() {
    let _fds = shared();
    let body = body_bytes(12 * MIB, 98);
    // The first segment request to arrive is served at 640 KiB/s: its 3 MiB
    // would take 4.8 s. The others finish at once, and one takes over the
    // second half of the slow one's rest (it qualifies while 2 MiB or more
    // are missing: for its first 1.6 s).
    let server = serve_big(&body, true, |r| r.faults = vec![Fault::Pass, Fault::Slow]);
    let out = TempDir::new("uvcurl-download-split-take-over");
    let url = server.url("/big.bin");
    let result = run(&[&url, "-o", out.str(), "--split", "4", "-v"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&out, &body);
    // In arrival order: the probe, then the slow request (the second one).
    let (_, slow) = &server.ranges()[1];
    let (slow_first, slow_last) = parse_closed(slow);
    let ranges = segment_ranges(&server);
    assert!(ranges.len() > 4, "{ranges:?}");
    let taken = ranges
        .iter()
        .any(|&(first, last)| first > slow_first && first <= slow_last && last == slow_last);
    assert!(taken, "no take-over of {slow:?}: {ranges:?}");
}

#[test]
fn over_http2_a_slow_stream_is_not_cut() {
    let _fds = shared();
    let pki = TestPki::generate();
    let certs = TempDir::new("uvcurl-download-split-h2-slow");
    fs::write(certs.join("ca.pem"), &pki.ca_pem).expect("write CA");
    let ca = certs.join("ca.pem");
    let body = body_bytes(4 * MIB, 100);
    let mut big = Route::file(body.clone());
    big.faults = vec![Fault::Pass, Fault::Slow];
    let routes = HashMap::from([("/big.bin".to_owned(), big)]);
    let server = FileServer::start_tls(routes, true, pki.server_config.clone()).expect("start");
    let out = TempDir::new("uvcurl-download-split-h2-slow-out");
    let ca = ca.to_str().expect("UTF-8");
    let url = server.url("/big.bin");
    let result = run(&[&url, "-o", out.str(), "--split", "4", "--cacert", ca]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&out, &body);
    // The streams share one connection: the slow one runs to its end.
    assert_eq!(segment_ranges(&server).len(), 4);
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_dropped_segment_is_retried_from_where_it_stopped() {
    let _fds = shared();
    let body = body_bytes(4 * MIB + 11, 101);
    let server = serve_big(&body, true, |r| {
        r.faults = vec![Fault::Pass, Fault::DropMidBody, Fault::Unavailable(true)];
    });
    let out = TempDir::new("uvcurl-download-split-retry");
    let result = run(&[
        &server.url("/big.bin"),
        "-o",
        out.str(),
        "--split",
        "4",
        "-v",
    ]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_saved(&out, &body);
    assert!(
        result.stderr.contains("retry 1/3 of a segment"),
        "{result:#?}"
    );
    // In arrival order: the probe, the dropped request (half of it sent),
    // ..., and the retry of the rest of that segment only.
    let ranges = server.ranges();
    let (first, last) = parse_closed(&ranges[1].1);
    let half = (last + 1 - first) / 2;
    let resumed = format!("bytes={}-{last}", first + half);
    assert!(
        ranges.iter().any(|(_, r)| *r == resumed),
        "{resumed} not in {ranges:?}"
    );
}
