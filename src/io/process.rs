//! Whether a process still runs: the holder of a journal, a lease or a private directory that
//! may have died without cleaning up.

/// Whether `pid` is a process that has not ended. A killed process whose parent died too waits
/// as a zombie until init reaps it: it has ended, though signal 0 still finds it. A process we
/// may not signal (another user's) exists.
pub fn running(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only asks whether the process exists and may be signalled.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    exists && !zombie(pid)
}

fn zombie(pid: libc::pid_t) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `pid (comm) S …`: the state follows the last `)`, since comm may hold one.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_an_ended_child_does_not() {
        assert!(running(std::process::id() as libc::pid_t));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        // Ended but not reaped: a zombie, which signal 0 still finds.
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!running(pid), "a zombie has ended");
        child.wait().unwrap();
        assert!(!running(pid), "a reaped child has ended");
    }
}
