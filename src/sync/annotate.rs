//! Happens-before annotations for valgrind's race detectors (helgrind, DRD).
//!
//! Both tools see `pthread` calls but not atomics or futexes, so a hand-over
//! through an atomic (the remote mailbox) or a std `Mutex` (futex-based on
//! Linux) looks to them like unsynchronised access. [`before`] and
//! [`after`] tell them about such an edge: everything a thread did before
//! `before(tag)` happens before everything another thread does after a
//! later `after(tag)` with the same tag (`ANNOTATE_HAPPENS_BEFORE` /
//! `ANNOTATE_HAPPENS_AFTER` of valgrind's `helgrind.h` and `drd.h`, which
//! share the request numbers used here).
//!
//! Each is valgrind's client-request sequence: on a real CPU a few register
//! rotations that cancel out and an `xchg` of a register with itself, about
//! a nanosecond; only under valgrind does it do anything. On targets other
//! than x86-64 (and under Miri) they do nothing; the race-detector tests run
//! on x86-64.

/// `VG_USERREQ_TOOL_BASE('H','G')`.
const HG_BASE: usize = ((b'H' as usize) << 24) | ((b'G' as usize) << 16);
/// `_VG_USERREQ__HG_USERSO_SEND_PRE` (helgrind.h) =
/// `VG_USERREQ__DRD_ANNOTATE_HAPPENS_BEFORE` (drd.h).
const HAPPENS_BEFORE: usize = HG_BASE + 256 + 33;
/// `_VG_USERREQ__HG_USERSO_RECV_POST` = `VG_USERREQ__DRD_ANNOTATE_HAPPENS_AFTER`.
const HAPPENS_AFTER: usize = HG_BASE + 256 + 34;

/// What this thread did so far happens before what a thread does after
/// [`after`] with the same `tag` (an address naming the hand-over).
#[inline(always)]
pub(crate) fn before<T: ?Sized>(tag: *const T) {
    client_request(HAPPENS_BEFORE, tag.cast::<()>() as usize);
}

/// Everything done before a [`before`] with the same `tag` happens before
/// what this thread does from now on.
#[inline(always)]
pub(crate) fn after<T: ?Sized>(tag: *const T) {
    client_request(HAPPENS_AFTER, tag.cast::<()>() as usize);
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
fn client_request(request: usize, arg: usize) {
    let args: [usize; 6] = [request, arg, 0, 0, 0, 0];
    // SAFETY: valgrind.h's amd64 client request. The four rotations of rdi
    // add up to 128 bits (rdi ends as it began) and `xchg rbx, rbx` changes
    // nothing; under valgrind the sequence reads the six words at rax and
    // writes the result (unused) to rdx. Only flags and rdx are clobbered.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0usize => _,
            options(nostack),
        );
    }
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
#[inline(always)]
fn client_request(_request: usize, _arg: usize) {}
