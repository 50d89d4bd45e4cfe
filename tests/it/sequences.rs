//! Randomized API sequences (proptest): random interleavings of start,
//! cancel, pause, resume, run-once, run-nowait, drop-multi and new-multi
//! against a loopback server. Invariants, checked after every sequence: every
//! started transfer completes exactly once; a transfer whose `cancel`
//! returned true completes as `Cancelled`; successes are byte-exact; the loop
//! then closes with no handle and no leaked descriptor. Failing cases shrink
//! to a minimal sequence; proptest keeps them in `proptest-regressions/`.

use crate::support::harness::{assert_fds_back_to, serial, warm_up};
use crate::support::{body_bytes, fd_count, HttpServer};
use proptest::prelude::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;
use uvcurl::uv::Timer;
use uvcurl::{ErrorKind, Flow, Loop, Multi, Request, Transfer};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Fast,
    Slow,
    Streamed,
    Invalid,
}

#[derive(Debug, Clone)]
enum Op {
    Start(Kind),
    Cancel(usize),
    Pause(usize),
    Resume(usize),
    RunOnce,
    RunNowait,
    DropMulti,
    NewMulti,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![
            Just(Kind::Fast),
            Just(Kind::Slow),
            Just(Kind::Streamed),
            Just(Kind::Invalid)
        ]
        .prop_map(Op::Start),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => any::<usize>().prop_map(Op::Pause),
        1 => any::<usize>().prop_map(Op::Resume),
        3 => Just(Op::RunOnce),
        2 => Just(Op::RunNowait),
        1 => Just(Op::DropMulti),
        1 => Just(Op::NewMulti),
    ]
}

/// One server for all cases: starting a runtime per case would dominate.
fn server() -> &'static HttpServer {
    static SERVER: OnceLock<HttpServer> = OnceLock::new();
    SERVER.get_or_init(HttpServer::start)
}

struct Started {
    transfer: Transfer,
    completions: Rc<Cell<u32>>,
    cancelled: Rc<Cell<bool>>,
    outcome: Rc<RefCell<Option<Result<(), ErrorKind>>>>,
}

fn start(multi: &Multi, kind: Kind, n: usize) -> Result<Started, uvcurl::Error> {
    let (url, expected) = match kind {
        Kind::Fast | Kind::Streamed => (server().url(&format!("/bytes/20000?seed={n}")), 20_000),
        Kind::Slow => (server().url("/drip/200?ms=50"), 200),
        Kind::Invalid => ("http://bad host/".to_owned(), 0),
    };
    let completions = Rc::new(Cell::new(0));
    let outcome = Rc::new(RefCell::new(None));
    let streamed = Rc::new(RefCell::new(Vec::new()));
    let mut request = Request::get(url).timeout(Duration::from_secs(20));
    if let Kind::Streamed = kind {
        let sink = streamed.clone();
        request = request.on_data(move |chunk| {
            sink.borrow_mut().extend_from_slice(chunk);
            Flow::Continue
        });
    }
    let (c, o) = (completions.clone(), outcome.clone());
    let transfer = multi.start(request, move |result| {
        c.set(c.get() + 1);
        *o.borrow_mut() = Some(match result {
            Ok(response) => {
                let body = match kind {
                    Kind::Streamed => streamed.borrow().clone(),
                    _ => response.body().to_vec(),
                };
                let wanted = match kind {
                    Kind::Slow => body_bytes(expected, 0),
                    _ => body_bytes(expected, n as u64),
                };
                assert_eq!(body, wanted, "{kind:?} body");
                Ok(())
            }
            Err(e) => Err(e.kind()),
        });
    })?;
    Ok(Started {
        transfer,
        completions,
        cancelled: Rc::new(Cell::new(false)),
        outcome,
    })
}

/// Runs one iteration, never blocking for more than about 20 ms.
fn run_once_bounded(uv: &Loop) {
    let nudge = Timer::new(uv, || {}).unwrap();
    nudge.start(20);
    uv.run_once().unwrap();
    drop(nudge);
}

fn run_sequence(ops: &[Op]) {
    let _serial = serial();
    warm_up();
    server();
    let fds_before = fd_count();
    let uv = Loop::new().unwrap();
    let mut multi = Some(Multi::new(&uv).unwrap());
    let mut started: Vec<Started> = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Start(kind) => {
                let Some(m) = &multi else { continue };
                match (start(m, *kind, n), kind) {
                    (Ok(s), Kind::Invalid) => panic!("invalid URL accepted: {:?}", s.transfer),
                    (Ok(s), _) => started.push(s),
                    (Err(e), Kind::Invalid) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
                    (Err(e), _) => panic!("start failed: {e}"),
                }
            }
            Op::Cancel(i) if !started.is_empty() => {
                let s = &started[i % started.len()];
                s.cancelled.set(true); // before: the completion may run inside
                if !s.transfer.cancel() {
                    s.cancelled.set(false);
                }
            }
            Op::Pause(i) if !started.is_empty() => {
                let _ = started[i % started.len()].transfer.pause();
            }
            Op::Resume(i) if !started.is_empty() => {
                let _ = started[i % started.len()].transfer.resume();
            }
            Op::RunOnce => run_once_bounded(&uv),
            Op::RunNowait => {
                uv.run_nowait().unwrap();
            }
            Op::DropMulti => multi = None,
            Op::NewMulti if multi.is_none() => multi = Some(Multi::new(&uv).unwrap()),
            _ => {}
        }
    }
    // Paused transfers would never finish: closing cancels whatever is left.
    drop(multi);
    uv.run().unwrap();
    for (i, s) in started.iter().enumerate() {
        assert_eq!(s.completions.get(), 1, "transfer {i} completions");
        let outcome = s.outcome.borrow().unwrap();
        if s.cancelled.get() {
            assert_eq!(outcome, Err(ErrorKind::Cancelled), "transfer {i}");
        } else {
            assert!(
                matches!(outcome, Ok(()) | Err(ErrorKind::Cancelled)),
                "transfer {i}: {outcome:?}"
            );
        }
    }
    assert_eq!(uv.handle_count(), 0);
    uv.close().unwrap();
    drop(started);
    assert_fds_back_to(fds_before);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_api_sequences_keep_the_invariants(ops in prop::collection::vec(op(), 1..60)) {
        run_sequence(&ops);
    }
}

/// A sequence worth keeping: cancel, pause and resume around a drop and a
/// new Multi, then a run that must find nothing stuck.
#[test]
fn regression_pause_then_drop_then_new_multi() {
    run_sequence(&[
        Op::Start(Kind::Slow),
        Op::Start(Kind::Streamed),
        Op::Pause(1),
        Op::RunOnce,
        Op::Cancel(0),
        Op::DropMulti,
        Op::NewMulti,
        Op::Start(Kind::Fast),
        Op::Resume(1),
        Op::RunOnce,
        Op::RunOnce,
    ]);
}
