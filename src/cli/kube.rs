//! The cluster connection helm and kubectl must share: from helm's global flags first, then
//! helm's `HELM_*` environment, exactly as helm reads them; kubectl's spelling of the same.

use anyhow::Result;

use super::helm_flags;

/// The connection settings helm and kubectl must share, from flags or helm's environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeSettings {
    pub namespace: Option<String>,
    pub kube_context: Option<String>,
    pub kubeconfig: Option<String>,
    pub kube_apiserver: Option<String>,
    pub kube_token: Option<String>,
    pub kube_as_user: Option<String>,
    pub kube_as_groups: Vec<String>,
    pub kube_ca_file: Option<String>,
    pub kube_insecure_skip_tls_verify: bool,
    pub kube_tls_server_name: Option<String>,
    pub debug: bool,
}

impl KubeSettings {
    /// kubectl's spelling of the same connection (namespace excluded: it is per call).
    pub fn kubectl_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: &Option<String>| {
            if let Some(v) = value {
                args.push(format!("--{flag}={v}"));
            }
        };
        push("context", &self.kube_context);
        push("kubeconfig", &self.kubeconfig);
        push("server", &self.kube_apiserver);
        push("token", &self.kube_token);
        push("as", &self.kube_as_user);
        push("certificate-authority", &self.kube_ca_file);
        push("tls-server-name", &self.kube_tls_server_name);
        for group in &self.kube_as_groups {
            args.push(format!("--as-group={group}"));
        }
        if self.kube_insecure_skip_tls_verify {
            args.push("--insecure-skip-tls-verify=true".into());
        }
        args
    }
}

/// Reads helm's global settings the way helm does: flag first, then `HELM_*` environment.
pub(super) fn kube_settings(
    global_args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KubeSettings> {
    let flag = |name: &str| helm_flags::global_values(global_args, name).pop();
    let env_nonempty = |key: &str| env(key).filter(|v| !v.is_empty());
    // helm reads its boolean environment with strconv.ParseBool and ignores what does not parse.
    let env_true = |key: &str| env(key).and_then(|v| helm_flags::parse_bool(&v)) == Some(true);
    let mut groups = helm_flags::global_values(global_args, "kube-as-group");
    if groups.is_empty() {
        if let Some(list) = env_nonempty("HELM_KUBEASGROUPS") {
            groups = list
                .split(',')
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect();
        }
    }
    let insecure = helm_flags::global_bool(global_args, "kube-insecure-skip-tls-verify")?;
    let debug = helm_flags::global_bool(global_args, "debug")?;
    Ok(KubeSettings {
        namespace: flag("namespace").or_else(|| env_nonempty("HELM_NAMESPACE")),
        kube_context: flag("kube-context").or_else(|| env_nonempty("HELM_KUBECONTEXT")),
        kubeconfig: flag("kubeconfig"),
        kube_apiserver: flag("kube-apiserver").or_else(|| env_nonempty("HELM_KUBEAPISERVER")),
        kube_token: flag("kube-token").or_else(|| env_nonempty("HELM_KUBETOKEN")),
        kube_as_user: flag("kube-as-user").or_else(|| env_nonempty("HELM_KUBEASUSER")),
        kube_as_groups: groups,
        kube_ca_file: flag("kube-ca-file").or_else(|| env_nonempty("HELM_KUBECAFILE")),
        kube_insecure_skip_tls_verify: insecure
            .unwrap_or_else(|| env_true("HELM_KUBEINSECURE_SKIP_TLS_VERIFY")),
        kube_tls_server_name: flag("kube-tls-server-name")
            .or_else(|| env_nonempty("HELM_KUBETLS_SERVER_NAME")),
        debug: debug.unwrap_or_else(|| env_true("HELM_DEBUG")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form `plan::delete_command` is tested with (and takes the token out of).
    #[test]
    fn kubectl_gets_each_setting_as_one_flag_with_its_value() {
        let settings = KubeSettings {
            kube_context: Some("prod".into()),
            kubeconfig: Some("/home/ci/kubeconfig".into()),
            kube_token: Some("s3cr3t-t0ken".into()),
            kube_as_user: Some("deployer".into()),
            ..Default::default()
        };
        assert_eq!(
            settings.kubectl_args(),
            [
                "--context=prod",
                "--kubeconfig=/home/ci/kubeconfig",
                "--token=s3cr3t-t0ken",
                "--as=deployer"
            ]
        );
    }
}
