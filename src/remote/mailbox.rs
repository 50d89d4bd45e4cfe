//! The mailbox of a [`Remote`](super::Remote): a lock-free multi-producer
//! list that the loop thread takes whole.
//!
//! One atomic pointer is the whole state: null (empty), a node (the newest
//! command, linked to older ones), or [`closed()`] (refusing). Posting is one
//! compare-and-swap; the loop takes everything with one more. Whether the
//! list was empty before a post is what the post learns from its own
//! compare-and-swap, so "wake the loop only when the mailbox goes from empty
//! to non-empty" needs no separate flag that could disagree with the list.
//!
//! ## Why no command is stranded
//!
//! Call an *epoch* the stretch of `head`'s modification order from a post
//! that finds it null to the next take (or close). Every operation on
//! `head` is a read-modify-write, so they are totally ordered.
//!
//! 1. The post that opens an epoch (`push` returns `Ok(true)`) calls
//!    `uv_async_send` after its compare-and-swap. libuv then runs the async
//!    callback at least once more, and that run starts after the send: its
//!    `take` comes after the opening post in `head`'s order (libuv's
//!    seq_cst pairing of the send with the callback's clearing of its
//!    pending bit makes the opening post visible to it). So some take
//!    follows the opening post in `head`'s order, and the first one ends
//!    the epoch.
//! 2. A post inside an epoch (`Ok(false)`, no wake) swaps its node onto a
//!    non-null head, before the take that ends the epoch, which swaps out the
//!    whole list, this node included.
//! 3. A post after that take finds null and opens the next epoch (1).
//! 4. `close` swaps in the closed marker: it returns every command posted
//!    before it (they complete `Closed`); a post after it finds the marker
//!    and is refused, its command handed back. No command is both.
//!
//! The post's compare-and-swap is `Release` (publishing the node) and the
//! take's is `Acquire`; a take acquires every node of the list because each
//! later post is a read-modify-write continuing the earlier ones' release
//! sequences. Nodes are only ever taken all at once, never popped one by
//! one, so a recycled node address (ABA) cannot corrupt the list: a post's
//! compare-and-swap only checks that `next` is still the current head.
//!
//! The tests below race real threads on it; with `--cfg uvcurl_loom` (see
//! the README's "Reliability") loom checks the interleavings of a few posts,
//! takes, wake-ups and a close (up to 3 preemptions), under the C11 memory
//! model.
//!
//! Valgrind's race detectors do not see atomics: each post announces its
//! release to them, and each take and close its acquire
//! ([`annotate`](crate::sync::annotate)), tagged with `head`'s address.

use super::Command;
use crate::sync::annotate;
#[cfg(all(test, uvcurl_loom))]
use loom::sync::atomic::{AtomicPtr, Ordering};
use std::ptr;
#[cfg(not(all(test, uvcurl_loom)))]
use std::sync::atomic::{AtomicPtr, Ordering};

struct Node {
    command: Command,
    next: *mut Node,
}

/// The marker `head` holds once the mailbox is closed: the address of a
/// static, never a node's (it is never dereferenced).
fn closed() -> *mut Node {
    static MARK: u8 = 0;
    ptr::addr_of!(MARK).cast::<Node>().cast_mut()
}

/// A closable multi-producer, single-consumer list of commands.
pub(super) struct Mailbox {
    head: AtomicPtr<Node>,
}

// SAFETY: the nodes behind `head` are owned by the mailbox and hand over
// `Command`s, which are `Send`; every access goes through the atomic.
unsafe impl Send for Mailbox {}
// SAFETY: as above; `push`, `take` and `close` are safe to race (module docs).
unsafe impl Sync for Mailbox {}

impl Default for Mailbox {
    fn default() -> Mailbox {
        Mailbox {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

impl Mailbox {
    /// Posts `command`: `Ok(true)` if the mailbox was empty (the caller must
    /// wake the loop), `Ok(false)` if a wake-up is already due, `Err` with
    /// the command if the mailbox is closed.
    pub fn push(&self, command: Command) -> Result<bool, Command> {
        let node = Box::into_raw(Box::new(Node {
            command,
            next: ptr::null_mut(),
        }));
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            if head == closed() {
                // SAFETY: `node` came from Box::into_raw above and was never
                // published (every compare-and-swap so far failed).
                let node = unsafe { Box::from_raw(node) };
                return Err(node.command);
            }
            // SAFETY: not yet published: this thread owns the node.
            unsafe { (*node).next = head };
            annotate::before(&self.head);
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return Ok(head.is_null()),
                Err(now) => head = now,
            }
        }
    }

    /// Takes every queued command, oldest first (none once closed).
    pub fn take(&self) -> Batch {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            if head.is_null() || head == closed() {
                return Batch {
                    oldest: ptr::null_mut(),
                };
            }
            match self.head.compare_exchange_weak(
                head,
                ptr::null_mut(),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    annotate::after(&self.head);
                    // SAFETY: the list is now ours alone (swapped out).
                    return unsafe { Batch::of(head) };
                }
                Err(now) => head = now,
            }
        }
    }

    /// Closes the mailbox, returning what was queued (oldest first); later
    /// posts are refused.
    pub fn close(&self) -> Vec<Command> {
        let head = self.head.swap(closed(), Ordering::Acquire);
        annotate::after(&self.head);
        if head == closed() {
            return Vec::new();
        }
        // SAFETY: the list is now ours alone (swapped out).
        unsafe { Batch::of(head) }.collect()
    }

    /// Whether the mailbox refuses posts.
    pub fn is_closed(&self) -> bool {
        self.head.load(Ordering::Acquire) == closed()
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        drop(self.close());
    }
}

/// The commands of a swapped-out list, oldest first, each node freed as its
/// command is taken (the rest when dropped). Linked in place, so taking a
/// batch allocates nothing.
pub(super) struct Batch {
    /// The oldest node not yet taken, linked to newer ones; null when done.
    oldest: *mut Node,
}

impl Batch {
    /// The batch of the list at `newest`, re-linked oldest first.
    ///
    /// # Safety
    /// `newest` is null or the head of a list of nodes from `push` that no
    /// other thread can reach any more.
    unsafe fn of(mut newest: *mut Node) -> Batch {
        let mut oldest = ptr::null_mut();
        while !newest.is_null() {
            // SAFETY: per the contract, each node is ours alone.
            let node = unsafe { &mut *newest };
            newest = std::mem::replace(&mut node.next, oldest);
            oldest = node;
        }
        Batch { oldest }
    }

    /// Whether it holds no command (any more).
    pub fn is_empty(&self) -> bool {
        self.oldest.is_null()
    }
}

impl Iterator for Batch {
    type Item = Command;

    fn next(&mut self) -> Option<Command> {
        if self.oldest.is_null() {
            return None;
        }
        // SAFETY: the nodes of a batch are its own, boxed by `push`, and
        // each is unlinked here once.
        let node = unsafe { Box::from_raw(self.oldest) };
        self.oldest = node.next;
        Some(node.command)
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.for_each(drop);
    }
}

/// Commands that carry a number, for the tests: a cancel whose ticket holds it.
#[cfg(test)]
mod numbered {
    use super::Command;

    /// A command carrying the number `n`.
    pub(super) fn numbered(n: u64) -> Command {
        use crate::remote::task::{Awaited, Task, Unmade};
        let task = Task::new(Awaited {
            slot: Default::default(),
            make: Unmade,
        });
        task.ticket
            .set(crate::transfer::TransferKey { slot: 0, id: n });
        Command::Cancel(std::sync::Arc::new(task))
    }

    /// The number of a command made by [`numbered`].
    pub(super) fn number_of(command: Command) -> u64 {
        match command {
            Command::Cancel(task) => task.ticket.key().map_or(0, |key| key.id),
            _ => unreachable!("only numbered cancels are posted here"),
        }
    }
}

#[cfg(all(test, not(uvcurl_loom)))]
mod tests {
    use super::{Command, Mailbox};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::numbered::{number_of, numbered};

    /// Runs a taken or refused command (all are `Run` here).
    fn run(command: Command) {
        match command {
            Command::Run(job) => job(),
            _ => unreachable!("only Run commands are posted here"),
        }
    }

    /// 8 threads post while the consumer takes and finally closes: every
    /// command is either taken exactly once or handed back exactly once,
    /// each thread's commands come out in its order, and exactly the posts
    /// that found the mailbox empty were told to wake the consumer.
    #[test]
    fn racing_posts_takes_and_a_close_lose_nothing() {
        const THREADS: usize = 8;
        const EACH: usize = 20_000;
        let mailbox = Arc::new(Mailbox::default());
        let taken: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
        let refused = Arc::new(AtomicUsize::new(0));
        let wakes = Arc::new(AtomicUsize::new(0));
        let posters: Vec<_> = (0..THREADS)
            .map(|t| {
                let (mailbox, taken) = (mailbox.clone(), taken.clone());
                let (refused, wakes) = (refused.clone(), wakes.clone());
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        let record = taken.clone();
                        let job =
                            Command::Run(Box::new(move || record.lock().unwrap().push((t, i))));
                        match mailbox.push(job) {
                            Ok(true) => {
                                wakes.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(false) => {}
                            Err(_) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        if i % 97 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut takes_with_work = 0;
        while taken.lock().unwrap().len() < THREADS * EACH / 2 {
            let batch = mailbox.take();
            if !batch.is_empty() {
                takes_with_work += 1;
            }
            batch.into_iter().for_each(run);
        }
        // Close mid-stream; what was queued completes, later posts are refused.
        mailbox.close().into_iter().for_each(run);
        assert!(mailbox.is_closed());
        assert!(mailbox.take().is_empty());
        for poster in posters {
            poster.join().unwrap();
        }
        let taken = taken.lock().unwrap();
        assert_eq!(
            taken.len() + refused.load(Ordering::Relaxed),
            THREADS * EACH
        );
        let mut next = [0usize; THREADS];
        for &(t, i) in taken.iter() {
            assert_eq!(i, next[t], "thread {t}'s commands out of order or twice");
            next[t] += 1;
        }
        // Each take that found work ended an epoch some post had opened.
        assert!(wakes.load(Ordering::Relaxed) >= takes_with_work);
    }

    /// The wake-up protocol under stress (what the loom model checks
    /// exhaustively, here with real threads, in every `cargo test`): 4
    /// threads post, waking the "loop" through a pending flag as
    /// `uv_async_send` does when a post found the mailbox empty; the loop
    /// clears the flag, then takes until empty. In each of 100 rounds, once
    /// the posters are done, a command still queued always has a wake-up
    /// pending, and every command is taken exactly once.
    #[test]
    fn a_post_is_never_left_without_a_wake_up() {
        use std::sync::atomic::AtomicBool;
        const THREADS: usize = 4;
        const EACH: usize = 50;
        for round in 0..100 {
            let mailbox = Arc::new(Mailbox::default());
            let pending = Arc::new(AtomicBool::new(false));
            let posters: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (mailbox, pending) = (mailbox.clone(), pending.clone());
                    std::thread::spawn(move || {
                        for i in 0..EACH {
                            let id = (t * EACH + i) as u64;
                            if mailbox.push(numbered(id)).ok() == Some(true) {
                                pending.swap(true, Ordering::SeqCst);
                            }
                            if (i + round) % 7 == 0 {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            let mut taken = Vec::new();
            let take_all = |taken: &mut Vec<u64>| loop {
                let batch = mailbox.take();
                if batch.is_empty() {
                    break;
                }
                taken.extend(batch.into_iter().map(number_of));
            };
            while !posters.iter().all(|p| p.is_finished()) {
                if pending.swap(false, Ordering::SeqCst) {
                    take_all(&mut taken);
                } else {
                    std::thread::yield_now();
                }
            }
            for poster in posters {
                poster.join().unwrap();
            }
            let woken = pending.swap(false, Ordering::SeqCst);
            let before = taken.len();
            take_all(&mut taken);
            assert!(
                woken || taken.len() == before,
                "round {round}: {} commands queued without a wake-up",
                taken.len() - before
            );
            taken.sort_unstable();
            assert!(taken.iter().copied().eq(0..(THREADS * EACH) as u64));
        }
    }

    /// Dropping a mailbox frees (drops) what is still queued.
    #[test]
    fn dropping_the_mailbox_drops_queued_commands() {
        let dropped = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Drop for Count {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mailbox = Mailbox::default();
        for _ in 0..3 {
            let count = Count(dropped.clone());
            let woke = mailbox.push(Command::Run(Box::new(move || drop(count))));
            assert!(woke.is_ok());
        }
        drop(mailbox);
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
    }
}

/// Model checks with loom: the interleavings (and the outcomes the memory
/// orderings allow) of two posting threads against the loop thread.
/// `RUSTFLAGS="--cfg uvcurl_loom" cargo test --lib mailbox`.
#[cfg(all(test, uvcurl_loom))]
mod loom_model {
    use super::Mailbox;
    use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use loom::sync::Arc;

    use super::numbered::{number_of, numbered};

    /// Checks `f` in every interleaving with at most 3 preemptions (more
    /// with `LOOM_MAX_PREEMPTIONS`; 4 takes seconds, unbounded over a quarter
    /// of an hour). A bug found this way needs few preemptions: returning the
    /// "was empty" of a stale load instead of the compare-and-swap's fails
    /// with a single preemption.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound.get_or_insert(3);
        builder.check(f);
    }

    /// Two threads posting 1, 2 and 3, 4; each returns the ids refused.
    fn spawn_posters(
        mailbox: &Arc<Mailbox>,
        pending: &Arc<AtomicBool>,
    ) -> Vec<loom::thread::JoinHandle<Vec<u64>>> {
        [[1, 2], [3, 4]]
            .into_iter()
            .map(|ids| {
                let (mailbox, pending) = (mailbox.clone(), pending.clone());
                loom::thread::spawn(move || post_all(&mailbox, &pending, &ids))
            })
            .collect()
    }

    /// Posts `ids`; for each that found the mailbox empty, wakes the loop as
    /// `uv_async_send` does: a sequentially consistent read-modify-write of
    /// its pending flag (libuv's compare-and-swap from 0 to 1). Returns the
    /// ids refused.
    fn post_all(mailbox: &Mailbox, pending: &AtomicBool, ids: &[u64]) -> Vec<u64> {
        let mut refused = Vec::new();
        for &n in ids {
            match mailbox.push(numbered(n)) {
                Ok(true) => {
                    pending.swap(true, SeqCst);
                }
                Ok(false) => {}
                Err(command) => refused.push(number_of(command)),
            }
        }
        refused
    }

    /// Two threads post two commands each while the loop thread runs its
    /// async callback once (if woken: clear the flag, then take until
    /// empty). Afterwards every command not taken has a wake-up pending, so
    /// the loop runs again and takes it: none is stranded, none taken twice.
    #[test]
    fn no_command_is_stranded_without_a_wake_up() {
        model(|| {
            let mailbox = Arc::new(Mailbox::default());
            let pending = Arc::new(AtomicBool::new(false));
            let posters = spawn_posters(&mailbox, &pending);
            let mut taken = Vec::new();
            let woken = pending.swap(false, SeqCst);
            if woken {
                loop {
                    let batch = mailbox.take();
                    if batch.is_empty() {
                        break;
                    }
                    taken.extend(batch.into_iter().map(number_of));
                }
            }
            for poster in posters {
                assert!(poster.join().unwrap().is_empty());
            }
            let rest: Vec<u64> = mailbox.take().into_iter().map(number_of).collect();
            assert!(
                rest.is_empty() || pending.load(SeqCst),
                "stranded without a wake-up: {rest:?} (woken {woken}, took {taken:?})"
            );
            taken.extend(rest);
            taken.sort_unstable();
            assert_eq!(taken, [1, 2, 3, 4]);
        });
    }

    /// A close racing with two posting threads and a take: each command is
    /// taken, handed back by the close, or refused to its poster — exactly
    /// one of the three; each thread's taken commands keep their order.
    #[test]
    fn a_racing_close_neither_loses_nor_duplicates() {
        model(|| {
            let mailbox = Arc::new(Mailbox::default());
            let pending = Arc::new(AtomicBool::new(false));
            let posters = spawn_posters(&mailbox, &pending);
            let mut seen: Vec<u64> = mailbox.take().into_iter().map(number_of).collect();
            seen.extend(mailbox.close().into_iter().map(number_of));
            for pair in [[1, 2], [3, 4]] {
                let order: Vec<u64> = seen.iter().copied().filter(|i| pair.contains(i)).collect();
                assert!(order.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
            }
            for poster in posters {
                seen.extend(poster.join().unwrap());
            }
            assert!(mailbox.is_closed());
            assert!(mailbox.push(numbered(5)).is_err());
            seen.sort_unstable();
            assert_eq!(seen, [1, 2, 3, 4]);
        });
    }
}
