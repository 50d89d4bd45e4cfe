//! CPU pinning for `--pin`: each client runs on one CPU (the last this
//! process may use) and nginx on the others, so a client's CPU time is not
//! spread over the server's core, as the measurements of issue 13 were
//! taken. The files-1k workload always pins its tools this way.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

/// Which CPUs the clients and the server run on.
#[derive(Clone, Debug)]
pub(crate) struct Pinning {
    /// The one CPU every client runs on.
    pub(crate) client: usize,
    /// The CPUs nginx runs on: all the others.
    pub(crate) server: Vec<usize>,
}

impl Pinning {
    /// The last allowed CPU for clients, the rest for the server; an error
    /// on a single-CPU machine, where the two cannot be kept apart.
    pub(crate) fn split() -> Result<Pinning, String> {
        let mut cpus = allowed_cpus()?;
        let client = cpus.pop().ok_or("no CPU in this process's affinity mask")?;
        if cpus.is_empty() {
            return Err(
                "--pin needs at least two CPUs (one for the clients, one for nginx)".into(),
            );
        }
        Ok(Pinning {
            client,
            server: cpus,
        })
    }

    /// How a table's heading says it.
    pub(crate) fn describe(&self) -> String {
        let server: Vec<String> = self.server.iter().map(usize::to_string).collect();
        format!(
            "each client pinned to CPU {}, nginx to CPU {}",
            self.client,
            server.join(",")
        )
    }
}

/// The CPUs this process may run on, in increasing order.
pub(crate) fn allowed_cpus() -> Result<Vec<usize>, String> {
    // SAFETY: a zeroed cpu_set_t is a valid out-parameter of its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer and size; 0 is this process.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return Err(format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// The CPU the files-1k tools are pinned to: the last one this process may use.
pub(crate) fn client_cpu() -> Result<usize, String> {
    allowed_cpus()?
        .pop()
        .ok_or_else(|| "no CPU in this process's affinity mask".to_owned())
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: the CPUs come from `allowed_cpus`, below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    set
}

/// Moves the running process `pid` (all its threads: nginx runs one) to `cpus`.
pub(crate) fn pin_process(pid: u32, cpus: &[usize]) -> Result<(), String> {
    let set = cpu_set(cpus);
    // SAFETY: valid pointer and size of a local set.
    let rc =
        unsafe { libc::sched_setaffinity(pid as libc::pid_t, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity({pid}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Makes `command` start by `fork`, as a pinned one does, so that its peak
/// RSS is its own: without a `pre_exec` hook std spawns with
/// `posix_spawn` (the child shares this process's memory until `exec`), and
/// Linux then counts this process's RSS (the runner's, about 13.6 MiB) in
/// the child's `ru_maxrss`, which no smaller client could go below.
pub(crate) fn fork_command(command: &mut Command) {
    // SAFETY: the hook runs in the forked child before exec and does nothing.
    unsafe {
        command.pre_exec(|| Ok(()));
    }
}

/// Makes `command` start on `cpu` only (its threads inherit the mask).
pub(crate) fn pin_command(command: &mut Command, cpu: usize) {
    let set = cpu_set(&[cpu]);
    // SAFETY: the hook runs in the forked child before exec and makes one
    // async-signal-safe syscall on a set copied into the closure.
    unsafe {
        command.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}
