//! One run per release at a time: this machine's lock (`journal::lock_release`) and the
//! release's Lease on the cluster (`lease`); a second run ends with exit 6.

use std::path::{Path, PathBuf};

use crate::cli::Invocation;
use crate::io::journal;
use crate::io::lease::{self, Lease};
use crate::pipeline::ending::Ending;
use crate::pipeline::tools::Tools;

pub(crate) enum Locked {
    Held(PathBuf, journal::ReleaseLock),
    /// Another run holds the lock at this path.
    Busy(PathBuf),
}

/// One run per release at a time: the journal directory doubles as the lock's home.
pub(crate) fn lock(
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<String>,
    namespace: &str,
) -> anyhow::Result<Locked> {
    let dir = match &invocation.own.journal_dir {
        Some(dir) => dir.clone(),
        None => journal::default_dir(env)?,
    };
    Ok(
        match journal::lock_release(&dir, namespace, &invocation.release)? {
            Some(lock) => Locked::Held(dir, lock),
            None => Locked::Busy(dir.join(namespace).join(&invocation.release).join(".lock")),
        },
    )
}

/// Who holds this machine's lock, for [`Ending::busy`].
pub(crate) fn local_holder(lock: &Path) -> String {
    format!("on this machine, lock {}", lock.display())
}

/// Takes the release's Lease (see `lease`): `Err` when another run holds it; the warnings say
/// when we took over an expired one or could not use Leases at all.
pub(crate) fn take_lease(
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<String>,
    tools: &Tools,
    namespace: &str,
) -> Result<(Option<Lease>, Vec<String>), Ending> {
    let proxy = match tools.kubectl.proxy() {
        Ok(proxy) => proxy,
        Err(error) => {
            return Ok((
                None,
                vec![format!("could not take this release's Lease ({error:#})")],
            ))
        }
    };
    let me = lease::identity(env);
    match lease::acquire(
        proxy,
        namespace,
        &invocation.release,
        &me,
        lease::duration(env),
    ) {
        lease::Acquired::Held(lease) => {
            let warnings = lease.took_over.iter().cloned().collect();
            Ok((Some(lease), warnings))
        }
        lease::Acquired::Busy(holder) => Err(Ending::busy(invocation, &holder)),
        lease::Acquired::Unavailable(warning) => Ok((None, vec![warning])),
    }
}
