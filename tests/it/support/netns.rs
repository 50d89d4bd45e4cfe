//! A test network made inside the test: two fresh network namespaces joined
//! by a veth pair, both ends shaped with `tc` (a `tbf` bandwidth limit, and
//! `netem` latency where the kernel has it).
//!
//! [`on_link`] runs the test body on a thread of its own in the "near"
//! namespace (the client, and anything started from that thread); servers go
//! to the "far" one with [`Link::far`]. Nothing touches the machine's own
//! network: both namespaces, and the veth with them, vanish once their last
//! thread and socket are gone. Needs root (CI runs as root); without it the
//! test fails, naming what is missing.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The near end's address (the client side).
pub const NEAR_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 1);
/// The far end's address (the servers).
pub const FAR_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 2);
/// An address on the link's subnet that no host answers (ARP goes unanswered).
pub const UNANSWERED_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 3);

const NEAR_DEV: &str = "uvl-near";
const FAR_DEV: &str = "uvl-far";

/// How the veth is shaped, in each direction.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// `tbf` rate, in Mbit/s.
    pub rate_mbit: u32,
    /// One-way latency range in ms, uniform (netem `delay MID JITTER`),
    /// applied on the veth when netem exists.
    pub latency_ms: (u64, u64),
}

/// The link a test body runs on.
pub struct Link {
    far: mpsc::Sender<Job>,
    netem: bool,
    shape: Shape,
}

type Job = Box<dyn FnOnce() + Send>;

impl Link {
    /// The far end's address.
    pub fn far_ip(&self) -> IpAddr {
        IpAddr::V4(FAR_IP)
    }

    /// Runs `f` in the far namespace (threads it starts, e.g. a server's,
    /// stay there) and returns its value.
    pub fn far<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.far
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .expect("far-end thread gone");
        rx.recv().expect("the far-end job panicked")
    }

    /// The latency a userspace proxy must add per direction: the shape's
    /// range, or none when netem already delays on the veth.
    pub fn proxy_latency_ms(&self) -> Option<(u64, u64)> {
        (!self.netem).then_some(self.shape.latency_ms)
    }
}

/// Builds the two namespaces and the shaped veth, then runs `body` on a new
/// thread in the near namespace; returns its value (a panic in `body` is
/// re-raised). Panics with a clear message if the network cannot be made.
pub fn on_link<T: Send>(shape: Shape, body: impl FnOnce(&Link) -> T + Send) -> T {
    thread::scope(|scope| {
        let near = thread::Builder::new()
            .name("links-near".into())
            .spawn_scoped(scope, move || {
                enter_new_namespace("near");
                let (far, far_tid) = spawn_far_end();
                let link = build(shape, far, far_tid);
                body(&link)
            })
            .expect("spawn the near-end thread");
        match near.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Moves the calling thread into a new, empty network namespace and brings
/// its loopback up.
fn enter_new_namespace(side: &str) {
    // SAFETY: unshare(2) with CLONE_NEWNET changes only the calling thread's
    // network namespace; it takes no pointers.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        panic!(
            "links: cannot create the {side} network namespace (unshare(CLONE_NEWNET): {}); \
             these tests need root or CAP_SYS_ADMIN (CI runs them as root)",
            std::io::Error::last_os_error()
        );
    }
    run("ip", &["link", "set", "lo", "up"]);
}

/// Starts the thread that owns the far namespace and runs jobs there until
/// the `Link` is dropped; returns its job queue and its thread id.
fn spawn_far_end() -> (mpsc::Sender<Job>, libc::pid_t) {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let (tid_tx, tid_rx) = mpsc::channel();
    thread::Builder::new()
        .name("links-far".into())
        .spawn(move || {
            enter_new_namespace("far");
            // SAFETY: gettid(2) takes no arguments and cannot fail.
            let _ = tid_tx.send(unsafe { libc::gettid() });
            for job in jobs_rx {
                job();
            }
        })
        .expect("spawn the far-end thread");
    let tid = tid_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the far-end thread failed to make its namespace (see its panic above)");
    (jobs_tx, tid)
}

/// Creates the veth pair (its far end moved into the far namespace),
/// addresses both ends and shapes them.
fn build(shape: Shape, far: mpsc::Sender<Job>, far_tid: libc::pid_t) -> Link {
    let tid = far_tid.to_string();
    run(
        "ip",
        &[
            "link", "add", NEAR_DEV, "type", "veth", "peer", "name", FAR_DEV, "netns", &tid,
        ],
    );
    let netem = shape_device(NEAR_DEV, shape);
    up_with_address(NEAR_DEV, NEAR_IP);
    let link = Link { far, netem, shape };
    let far_netem = link.far(move || {
        let netem = shape_device(FAR_DEV, shape);
        up_with_address(FAR_DEV, FAR_IP);
        netem
    });
    assert_eq!(netem, far_netem, "netem on one end of the veth only");
    if !netem {
        println!(
            "links: netem is not available on this kernel; latency {}-{} ms per direction \
             comes from the userspace proxy (tests/it/support/link_proxy.rs), the veth has \
             only the tbf limit of {} Mbit/s",
            shape.latency_ms.0, shape.latency_ms.1, shape.rate_mbit
        );
    }
    link
}

fn up_with_address(dev: &str, ip: Ipv4Addr) {
    run("ip", &["addr", "add", &format!("{ip}/24"), "dev", dev]);
    run("ip", &["link", "set", dev, "up"]);
}

/// Puts `tbf` on `dev`'s egress, under `netem` latency if the kernel has
/// netem; returns whether it has.
fn shape_device(dev: &str, shape: Shape) -> bool {
    let (low, high) = shape.latency_ms;
    let (mid, jitter) = ((low + high) / 2, (high - low) / 2);
    let netem = try_run(
        "tc",
        &[
            "qdisc",
            "add",
            "dev",
            dev,
            "root",
            "handle",
            "1:",
            "netem",
            "delay",
            &format!("{mid}ms"),
            &format!("{jitter}ms"),
            "limit",
            "100000",
        ],
    );
    if let Err(reason) = &netem {
        // The expected way to fail: no sch_netem in this kernel.
        assert!(
            reason.contains("unknown") || reason.contains("not supported"),
            "tc: netem failed for another reason than being absent: {reason}"
        );
    }
    let parent = if netem.is_ok() {
        vec!["parent", "1:1", "handle", "10:"]
    } else {
        vec!["root"]
    };
    let rate = format!("{}mbit", shape.rate_mbit);
    let mut args = vec!["qdisc", "add", "dev", dev];
    args.extend(parent);
    // A 2 MiB queue: bursts of hundreds of connections wait rather than
    // drop (some drops still happen, which TCP must recover from).
    args.extend(["tbf", "rate", &rate, "burst", "64kb", "limit", "2mb"]);
    run("tc", &args);
    netem.is_ok()
}

/// Runs an iproute2 tool; panics with its output if it fails.
fn run(tool: &str, args: &[&str]) {
    if let Err(reason) = try_run(tool, args) {
        panic!("links: {reason}");
    }
}

/// Runs an iproute2 tool in the calling thread's namespace.
fn try_run(tool: &str, args: &[&str]) -> Result<(), String> {
    let path = find_tool(tool);
    let output = Command::new(&path).args(args).output().unwrap_or_else(|e| {
        panic!("links: cannot run {path}: {e} (iproute2; vendor/bootstrap test installs it)")
    });
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{tool} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `ip` and `tc` live in /usr/sbin or /sbin, which a non-login PATH may lack.
fn find_tool(tool: &str) -> String {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| format!("{dir}/{tool}"))
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or_else(|| {
            panic!("links: `{tool}` not found (iproute2; vendor/bootstrap test installs it)")
        })
}
