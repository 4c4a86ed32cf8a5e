//! Network namespaces and the commands that shape them.
//!
//! The lab drives the kernel through the same tools an operator would use (`ip`,
//! `iptables-restore`), so that what it builds can be inspected by hand with
//! `ip netns exec rplab-... iptables-save`. Every namespace name starts with
//! [`NAME_PREFIX`] followed by the run id, which embeds the creating process's pid: that
//! is how [`cleanup_leftovers`] tells a killed run's leftovers from a live run's.
//!
//! Every interface the lab creates lives inside one of its own namespaces (veth pairs are
//! created inside the node namespace with their peer moved straight into the pod or
//! client namespace), so nothing ever appears in the host's namespace, and the iptables
//! rules live in the node namespace's own tables: deleting the namespaces deletes them.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::LabError;

/// The fixed prefix of every namespace the lab creates.
pub const NAME_PREFIX: &str = "rplab-";

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh run id, unique within this machine while this process lives:
/// `rplab-<pid>-<counter>`.
pub fn new_run_id() -> String {
    format!(
        "{NAME_PREFIX}{}-{}",
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Moves the CALLING THREAD into the network namespace `/run/netns/NAME` (as created by
/// `ip netns add`). Sockets the thread creates afterwards belong to that namespace;
/// other threads are unaffected.
///
/// Use it in a dedicated runtime's `on_thread_start` so that every socket of a prober is
/// created inside the lab:
///
/// ```no_run
/// let ns = "rplab-1234-0-client".to_string();
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .enable_all()
///     .on_thread_start(move || probe_lab::enter_netns(&ns).expect("setns"))
///     .build()
///     .unwrap();
/// # drop(rt);
/// ```
pub fn enter_netns(name: &str) -> std::io::Result<()> {
    if name.is_empty() || name.contains('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid network namespace name {name:?}"),
        ));
    }
    let f = File::open(format!("/run/netns/{name}"))?;
    // SAFETY: setns on a valid fd; it only changes this thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a short-lived thread that has entered namespace `name` (for writes to
/// `/proc/sys/net`, which are per namespace of the writing thread).
pub(crate) fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, LabError> {
    let n = name.to_string();
    std::thread::spawn(move || {
        enter_netns(&n)?;
        f()
    })
    .join()
    .map_err(|_| LabError::Setup(format!("thread in namespace {name} panicked")))?
    .map_err(|e| LabError::Setup(format!("in namespace {name}: {e}")))
}

/// Writes `value` to `/proc/sys/net/...` `key` (a path relative to /proc/sys) as seen
/// from namespace `ns`.
pub(crate) fn sysctls(ns: &str, pairs: &[(&str, String)]) -> Result<(), LabError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    in_netns(ns, move || {
        for (k, v) in pairs {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/sys/{k}"))
                .map_err(|e| std::io::Error::new(e.kind(), format!("{k}: {e}")))?;
            f.write_all(v.as_bytes())
                .map_err(|e| std::io::Error::new(e.kind(), format!("{k}={v}: {e}")))?;
        }
        Ok(())
    })
}

/// Runs a command to completion, with `stdin` fed if given; a non-zero exit is an error
/// carrying the command and the first line of its stderr.
pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, LabError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        LabError::Setup(format!(
            "cannot run {program}: {e} (the lab needs iproute2 and iptables)"
        ))
    })?;
    if let Some(input) = stdin {
        if let Some(mut si) = child.stdin.take() {
            si.write_all(input.as_bytes())
                .map_err(|e| LabError::Setup(format!("{program}: writing stdin: {e}")))?;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::Setup(format!("{program}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(LabError::Command(format!(
            "`{program} {}` failed ({}): {first}",
            args.join(" "),
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip [-n NS] -batch -` with the given lines (one process for many changes).
pub(crate) fn ip_batch(ns: Option<&str>, lines: &[String]) -> Result<(), LabError> {
    let mut args = Vec::new();
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["-batch", "-"]);
    let script = lines.join("\n") + "\n";
    run("ip", &args, Some(&script)).map(|_| ())
}

/// Sends one gratuitous ARP request for `ip` out of interface `ifname` of namespace `ns`,
/// as MetalLB's speaker does when it starts announcing an address: neighbours that
/// already have an entry for `ip` (even an unresolved one) learn the new owner at once.
pub(crate) fn gratuitous_arp(
    ns: &str,
    ifname: &str,
    ip: std::net::Ipv4Addr,
) -> Result<(), LabError> {
    let ifname = std::ffi::CString::new(ifname)
        .map_err(|_| LabError::Invalid(format!("bad interface name {ifname:?}")))?;
    in_netns(ns, move || {
        let err = std::io::Error::last_os_error;
        // SAFETY: plain socket calls on a fresh fd with correctly sized buffers; the fd
        // is closed on every path.
        unsafe {
            let index = libc::if_nametoindex(ifname.as_ptr());
            if index == 0 {
                return Err(err());
            }
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from((libc::ETH_P_ARP as u16).to_be()),
            );
            if fd < 0 {
                return Err(err());
            }
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (d, s) in ifr.ifr_name.iter_mut().zip(ifname.as_bytes_with_nul()) {
                *d = *s as libc::c_char;
            }
            if libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut ifr) < 0 {
                let e = err();
                libc::close(fd);
                return Err(e);
            }
            let mut mac = [0u8; 6];
            for (m, b) in mac.iter_mut().zip(ifr.ifr_ifru.ifru_hwaddr.sa_data.iter()) {
                *m = *b as u8;
            }
            let mut frame = Vec::with_capacity(42);
            frame.extend_from_slice(&[0xff; 6]);
            frame.extend_from_slice(&mac);
            frame.extend_from_slice(&[0x08, 0x06]); // ARP
            frame.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet/IPv4, request
            frame.extend_from_slice(&mac);
            frame.extend_from_slice(&ip.octets());
            frame.extend_from_slice(&[0; 6]);
            frame.extend_from_slice(&ip.octets());
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
            addr.sll_ifindex = index as i32;
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&[0xff; 6]);
            let n = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            let e = err();
            libc::close(fd);
            if n < 0 {
                return Err(e);
            }
        }
        Ok(())
    })
}

/// Names under /run/netns.
pub(crate) fn list_netns() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Kills (SIGKILL) every process inside namespace `ns` and deletes the namespace.
/// Deleting a namespace deletes its interfaces (and so their veth peers) and its
/// iptables tables.
pub(crate) fn destroy_netns(ns: &str) -> Result<(), LabError> {
    if let Ok(pids) = run("ip", &["netns", "pids", ns], None) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            if pid > 1 && pid != std::process::id() as i32 {
                // SAFETY: plain kill(2) of a pid that lives in the lab's namespace.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
    match run("ip", &["netns", "delete", ns], None) {
        Ok(_) => Ok(()),
        Err(_) if !std::path::Path::new(&format!("/run/netns/{ns}")).exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The pid embedded in a lab namespace name `rplab-<pid>-<n>-...`.
fn owner_pid(name: &str) -> Option<i32> {
    name.strip_prefix(NAME_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Removes what killed lab runs left behind: every namespace whose name starts with
/// [`NAME_PREFIX`] and whose owning process (the pid in its name) is gone, with the
/// processes inside it (a proxy pod's proxy too), and those runs' lab folders. The lab's interfaces and iptables rules all live inside those
/// namespaces, so they go with them; nothing of the lab lives in the host's namespace.
/// Namespaces of live runs (including this process's) are left alone; so is a leftover
/// whose pid has meanwhile been reused by another process, until that process ends.
///
/// Returns how many namespaces were removed.
///
/// ```no_run
/// let n = probe_lab::cleanup_leftovers()?;
/// println!("removed {n} leftover lab namespaces");
/// # Ok::<(), probe_lab::LabError>(())
/// ```
pub fn cleanup_leftovers() -> Result<usize, LabError> {
    let me = std::process::id() as i32;
    let mut removed = 0;
    let mut first_err = None;
    for ns in list_netns() {
        let Some(pid) = owner_pid(&ns) else { continue };
        if pid == me || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match destroy_netns(&ns) {
            Ok(()) => removed += 1,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    // The proxies' folders (configs, sockets, logs) of the same dead runs.
    remove_lab_dirs(|pid| pid != me && !std::path::Path::new(&format!("/proc/{pid}")).exists());
    match first_err {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// Removes the lab folders ([`crate::lab_dir`]) whose owning pid `gone` says is gone.
fn remove_lab_dirs(gone: impl Fn(i32) -> bool) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if owner_pid(&name).is_some_and(&gone) && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes every lab namespace of THIS process at once (with the pods inside), for a
/// Ctrl-C handler that is about to exit without unwinding. A [`crate::Lab`] that is
/// still alive will find its namespaces gone; drop it afterwards, never before.
///
/// Returns how many namespaces were removed.
pub fn cleanup_own() -> Result<usize, LabError> {
    let mine = format!("{NAME_PREFIX}{}-", std::process::id());
    let mut removed = 0;
    for ns in list_netns().into_iter().filter(|n| n.starts_with(&mine)) {
        destroy_netns(&ns)?;
        removed += 1;
    }
    let me = std::process::id() as i32;
    remove_lab_dirs(|pid| pid == me);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_parseable() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert!(a.starts_with(NAME_PREFIX));
        assert_eq!(
            owner_pid(&format!("{a}-node")),
            Some(std::process::id() as i32)
        );
        assert_eq!(owner_pid("rplab-x"), None);
        assert_eq!(owner_pid("other-1-2"), None);
    }

    #[test]
    fn enter_netns_rejects_bad_names() {
        assert!(enter_netns("../etc").is_err());
        assert!(enter_netns("").is_err());
    }
}
