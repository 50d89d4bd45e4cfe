//! The frame every driver test runs in: a fresh loop and `Multi`, a bounded
//! run, and at the end the proof that nothing leaked — the loop closes with
//! no handle left and the process has as many file descriptors as before.

use super::fd_count;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use uvcurl::uv::Timer;
use uvcurl::{Loop, Multi, MultiBuilder};

/// The descriptor count is process-wide, and every integration test runs in
/// this one process: a test that counts descriptors (every `Harness`, and
/// whoever takes `serial()`) runs alone, while tests that open descriptors
/// without counting them take `shared()` and may run together.
static FDS: RwLock<()> = RwLock::new(());

/// For a test that counts descriptors: runs it alone (poisoning from a
/// failed test is ignored).
pub fn serial() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|e| e.into_inner())
}

/// For a test that opens descriptors in this process without counting
/// them: keeps it apart from those that count.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

/// A loop, a `Multi` on it, and the descriptor count from before both.
pub struct Harness {
    pub uv: Loop,
    multi: RefCell<Option<Multi>>,
    fds_before: usize,
    _serial: RwLockWriteGuard<'static, ()>,
}

impl Harness {
    /// A harness with a default `Multi`. Start servers after this and drop
    /// them before [`finish`](Harness::finish), so they count on neither side.
    pub fn new() -> Harness {
        Harness::with(Multi::builder())
    }

    /// A harness whose `Multi` is built from `builder`.
    pub fn with(builder: MultiBuilder) -> Harness {
        let serial = serial();
        warm_up();
        let fds_before = fd_count();
        let uv = Loop::new().expect("loop");
        let multi = builder.build(&uv).expect("multi");
        Harness {
            uv,
            multi: RefCell::new(Some(multi)),
            fds_before,
            _serial: serial,
        }
    }

    /// The `Multi` (panics if a test took it).
    pub fn multi(&self) -> std::cell::Ref<'_, Multi> {
        std::cell::Ref::map(self.multi.borrow(), |m| m.as_ref().expect("multi taken"))
    }

    /// Hands the `Multi` over, e.g. to a callback that drops it.
    pub fn take_multi(&self) -> Multi {
        self.multi.borrow_mut().take().expect("multi taken")
    }

    /// Runs the loop until it has nothing left to do; fails the test if that
    /// takes longer than `limit` (a watchdog closes the `Multi` then).
    pub fn run_for(&self, limit: Duration) {
        let expired = Rc::new(Cell::new(false));
        let flag = expired.clone();
        let handle = self.multi.borrow().as_ref().map(Multi::handle);
        let watchdog = Timer::new(&self.uv, move || {
            flag.set(true);
            if let Some(handle) = &handle {
                handle.close();
            }
        })
        .expect("watchdog timer");
        watchdog.unref();
        watchdog.start(limit.as_millis() as u64);
        let started = Instant::now();
        self.uv.run().expect("loop run");
        drop(watchdog);
        assert!(
            !expired.get(),
            "the loop was still busy after {:?} (watchdog closed the Multi)",
            started.elapsed()
        );
    }

    /// Runs with the default limit of 60 s.
    pub fn run(&self) {
        self.run_for(Duration::from_secs(60));
    }

    /// Drops the `Multi`, lets the loop finish, and asserts that the loop
    /// closes cleanly and no descriptor leaked.
    pub fn finish(self) {
        drop(self.multi.borrow_mut().take());
        self.uv.run().expect("final loop run");
        assert_eq!(self.uv.handle_count(), 0, "handles left on the loop");
        self.uv.close().expect("uv_loop_close reports open handles");
        assert_fds_back_to(self.fds_before);
    }
}

/// Makes the one-time, process-wide allocations before any count is taken:
/// libuv opens its signal-lock pipe at the first loop's creation, libcurl
/// initialises once.
pub fn warm_up() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let uv = Loop::new().expect("loop");
        drop(Multi::new(&uv).expect("multi"));
        uv.run().expect("run");
        uv.close().expect("close");
    });
}

/// The descriptor count once it has stopped changing (the same over 100 ms;
/// waits at most 5 s, then returns the latest count).
pub fn settled_fd_count() -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = fd_count();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = fd_count();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Waits (at most 5 s: server sides of closed connections close
/// asynchronously) for the descriptor count to return to `before`.
pub fn assert_fds_back_to(before: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = fd_count();
        if now <= before {
            return;
        }
        if Instant::now() > deadline {
            let open: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .map(|dir| {
                    dir.flatten()
                        .map(|e| format!("{:?}", std::fs::read_link(e.path()).ok()))
                        .collect()
                })
                .unwrap_or_default();
            panic!("file descriptors leaked: {before} before, {now} after: {open:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Outcomes of transfers by key, in completion order.
pub type Outcomes<K> = Rc<RefCell<Vec<(K, Result<uvcurl::Response, uvcurl::Error>)>>>;

impl Harness {
    /// Starts every request and records each outcome under its key.
    pub fn start_all<K: 'static>(
        &self,
        requests: impl IntoIterator<Item = (K, uvcurl::Request)>,
    ) -> Outcomes<K> {
        let outcomes: Outcomes<K> = collector();
        for (key, request) in requests {
            let sink = outcomes.clone();
            self.multi()
                .start(request, move |result| sink.borrow_mut().push((key, result)))
                .expect("start");
        }
        outcomes
    }
}

/// A shared list that completion callbacks push into.
pub fn collector<T>() -> Rc<RefCell<Vec<T>>> {
    Rc::new(RefCell::new(Vec::new()))
}

/// Whether the linked libcurl can reuse an h2c prior-knowledge connection:
/// 7.x cannot (curl #10634, fixed in 8.0.0).
pub fn h2c_reuse_works() -> bool {
    let version = uvcurl::version().curl;
    version
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok())
        >= Some(8)
}
