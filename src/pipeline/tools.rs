//! The adapters one run uses, set up once from the invocation.

use std::sync::Arc;

use crate::cli::Invocation;
use crate::io::helm::Helm;
use crate::io::kubectl::Kubectl;
use crate::io::version_cache;

pub struct Tools {
    pub(crate) helm: Helm,
    /// Shared by every release of the incident view: one proxy, one discovery.
    pub(crate) kubectl: Arc<Kubectl>,
}

impl Tools {
    pub(crate) fn new(invocation: &Invocation, env: &dyn Fn(&str) -> Option<String>) -> Tools {
        Tools {
            helm: Helm {
                bin: invocation.own.helm.clone(),
                global_args: invocation.helm_global_args.clone(),
                version_cache: version_cache::default_dir(env),
            },
            kubectl: Arc::new(Kubectl::new(
                invocation.own.kubectl.clone(),
                invocation.kube.kubectl_args(),
            )),
        }
    }

    /// The tools for one release of the incident view (`invocation` from
    /// [`Invocation::for_release`]): helm on its namespace, the same kubectl.
    pub(crate) fn for_release(&self, invocation: &Invocation) -> Tools {
        Tools {
            helm: Helm {
                bin: self.helm.bin.clone(),
                global_args: invocation.helm_global_args.clone(),
                version_cache: self.helm.version_cache.clone(),
            },
            kubectl: Arc::clone(&self.kubectl),
        }
    }

    /// kubectl's connection flags with every credential replaced by a variable: what printed
    /// commands and the journal may carry.
    pub(crate) fn printable_connection(&self) -> Vec<String> {
        crate::domain::plan::without_credentials(&self.kubectl.connection_args)
    }
}
