//! `plugin.complete` (see `cli::complete`): the releases and revisions helm knows, read with
//! the helm that runs the completion (`HELM_BIN`) in its namespace and context (`HELM_*`).

use crate::cli::complete::{self, Wanted, FILES, NO_FILE_COMPLETION};
use crate::io::helm::Helm;

/// cobra's directive for "completion failed": the shell shows nothing.
const ERROR: u32 = 1;

/// The lines `plugin.complete` prints for `words` (the last one being typed).
pub fn complete(words: &[String], env: &dyn Fn(&str) -> Option<String>) -> String {
    let current = words.last().map(String::as_str).unwrap_or("");
    let helm = Helm {
        bin: env("HELM_BIN").unwrap_or_else(|| "helm".into()).into(),
        global_args: Vec::new(),
        version_cache: crate::io::version_cache::default_dir(env),
    };
    let (candidates, directive) = match complete::wanted(words) {
        Wanted::Flag => (complete::flags(current), NO_FILE_COMPLETION),
        Wanted::Output => (complete::outputs(current), NO_FILE_COMPLETION),
        Wanted::FlagValue => (Vec::new(), FILES),
        Wanted::Nothing => (Vec::new(), NO_FILE_COMPLETION),
        Wanted::Release => match helm.version().and_then(|v| helm.list(false, v.major)) {
            Ok(releases) => {
                let matching = releases.into_iter().filter(|r| r.name.starts_with(current));
                let lines = matching.map(|r| (r.name, format!("{} -> {}", r.chart, r.status)));
                (lines.collect(), NO_FILE_COMPLETION)
            }
            Err(_) => (Vec::new(), ERROR),
        },
        Wanted::Revision { release } => match helm.history(&release) {
            Ok(history) => {
                let matching = history.into_iter().rev();
                let matching = matching.filter(|r| r.revision.to_string().starts_with(current));
                let lines = matching.map(|r| {
                    let about = format!("{}, {}: {}", r.status, r.chart, r.description);
                    (r.revision.to_string(), about)
                });
                (lines.collect(), NO_FILE_COMPLETION)
            }
            Err(_) => (Vec::new(), ERROR),
        },
    };
    complete::print(&candidates, directive)
}
