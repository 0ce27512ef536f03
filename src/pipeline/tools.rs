//! The adapters one run uses, set up once from the invocation.

use crate::cli::Invocation;
use crate::io::helm::Helm;
use crate::io::kubectl::Kubectl;
use crate::io::version_cache;

pub struct Tools {
    pub(crate) helm: Helm,
    pub(crate) kubectl: Kubectl,
}

impl Tools {
    pub(crate) fn new(invocation: &Invocation, env: &dyn Fn(&str) -> Option<String>) -> Tools {
        Tools {
            helm: Helm {
                bin: invocation.own.helm.clone(),
                global_args: invocation.helm_global_args.clone(),
                version_cache: version_cache::default_dir(env),
            },
            kubectl: Kubectl::new(
                invocation.own.kubectl.clone(),
                invocation.kube.kubectl_args(),
            ),
        }
    }

    /// kubectl's connection flags with every credential replaced by a variable: what printed
    /// commands and the journal may carry.
    pub(crate) fn printable_connection(&self) -> Vec<String> {
        crate::domain::plan::without_credentials(&self.kubectl.connection_args)
    }
}
