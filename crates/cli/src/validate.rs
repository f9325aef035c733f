//! `pipewright validate FILE`: check a pipeline declaration.
//!
//! - Valid: exit 0, one summary line on `out`
//!   (`sample.json: pipeline "x" is valid: 5 stages, 6 actions`).
//! - Invalid: exit 1, one `path: reason` line per problem on `out` (the same
//!   lines as the `infra/pipelines/invalid/*.expected` files), then a count
//!   line on `err`.
//! - Unreadable or not a declaration: exit 2, one line on `err` naming the
//!   file and, for a parse error, its line and column.

use std::io::Write;
use std::path::Path;

use pipewright_core::{parse_pipeline, validate};

/// Exit status: the declaration is valid.
pub const EXIT_VALID: i32 = 0;
/// Exit status: the declaration was read but has problems.
pub const EXIT_INVALID: i32 = 1;
/// Exit status: the file could not be read or parsed.
pub const EXIT_UNREADABLE: i32 = 2;

/// Runs `pipewright validate` on `path`, writing results to `out` and
/// diagnostics to `err`; returns the exit status.
pub fn run(path: &Path, out: &mut impl Write, err: &mut impl Write) -> i32 {
    let file = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            emit(err, format_args!("{file}: cannot read: {e}"));
            return EXIT_UNREADABLE;
        }
    };
    let mut pipeline = match parse_pipeline(&text) {
        Ok(pipeline) => pipeline,
        Err(e) => {
            emit(err, format_args!("{file}: {e}"));
            return EXIT_UNREADABLE;
        }
    };
    // As CreatePipeline does: V2 features without a pipelineType make it V2.
    pipewright_core::validation::infer_pipeline_type(&mut pipeline);
    match validate(&pipeline) {
        Ok(()) => {
            let stages = pipeline.stages.len();
            let actions = pipeline.actions().count();
            emit(
                out,
                format_args!(
                    "{file}: pipeline \"{}\" is valid: {}, {}",
                    pipeline.name,
                    plural(stages, "stage"),
                    plural(actions, "action")
                ),
            );
            EXIT_VALID
        }
        Err(problems) => {
            for problem in &problems {
                emit(out, format_args!("{problem}"));
            }
            emit(
                err,
                format_args!(
                    "{file}: pipeline \"{}\" is invalid: {}",
                    pipeline.name,
                    plural(problems.len(), "problem")
                ),
            );
            EXIT_INVALID
        }
    }
}

/// Reads and validates `path` for `pipewright <command>`, which sends it on: problems go to `err`
/// (the same `path: reason` lines as `validate` prints, then
/// `pipewright <command>: InvalidStructureException: ...`) and the exit status is returned
/// instead of the declaration: 2 unreadable, 1 invalid.
pub fn load(
    command: &str,
    path: &Path,
    err: &mut impl Write,
) -> Result<pipewright_core::PipelineDeclaration, i32> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        emit(
            err,
            format_args!("pipewright {command}: CannotReadFile: {file}: {e}"),
        );
        EXIT_UNREADABLE
    })?;
    let mut pipeline = parse_pipeline(&text).map_err(|e| {
        emit(
            err,
            format_args!("pipewright {command}: InvalidStructureException: {file}: {e}"),
        );
        EXIT_UNREADABLE
    })?;
    pipewright_core::validation::infer_pipeline_type(&mut pipeline);
    if let Err(problems) = validate(&pipeline) {
        for problem in &problems {
            emit(err, format_args!("{problem}"));
        }
        emit(
            err,
            format_args!(
                "pipewright {command}: InvalidStructureException: {file}: pipeline \"{}\" is invalid: {}; nothing was sent",
                pipeline.name,
                plural(problems.len(), "problem")
            ),
        );
        return Err(EXIT_INVALID);
    }
    Ok(pipeline)
}

/// `1 stage`, `5 stages`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Writes one line; a closed pipe is not worth failing over.
fn emit(w: &mut impl Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(w, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file in the temp directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "pipewright-validate-{}-{unique}-{name}",
                std::process::id()
            ));
            std::fs::write(&path, text).expect("write temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn run_on(path: &Path) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(path, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).expect("utf-8 stdout"),
            String::from_utf8(err).expect("utf-8 stderr"),
        )
    }

    const VALID: &str = r#"{
  "name": "tiny",
  "roleArn": "arn:aws:iam::123456789012:role/tiny",
  "artifactStore": {"type": "S3", "location": "tiny-artifacts"},
  "stages": [
    {"name": "Source", "actions": [{
      "name": "Fetch",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip"},
      "outputArtifacts": [{"name": "App"}]
    }]},
    {"name": "Ship", "actions": [{
      "name": "Upload",
      "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"BucketName": "site", "Extract": "true"},
      "inputArtifacts": [{"name": "App"}]
    }]}
  ]
}"#;

    #[test]
    fn valid_declaration_prints_one_summary_line() {
        let file = TempFile::new("valid.json", VALID);
        let (code, out, err) = run_on(&file.0);
        assert_eq!(code, EXIT_VALID);
        assert_eq!(
            out,
            format!(
                "{}: pipeline \"tiny\" is valid: 2 stages, 2 actions\n",
                file.0.display()
            )
        );
        assert_eq!(err, "");
    }

    #[test]
    fn invalid_declaration_prints_one_line_per_problem() {
        let text = VALID
            .replace(
                r#""inputArtifacts": [{"name": "App"}]"#,
                r#""inputArtifacts": [{"name": "Other"}]"#,
            )
            .replace(r#""name": "tiny""#, r#""name": "tiny one""#);
        let file = TempFile::new("invalid.json", &text);
        let (code, out, err) = run_on(&file.0);
        assert_eq!(code, EXIT_INVALID);
        assert_eq!(
            out,
            "name: `tiny one` contains ' ', which is not allowed; use only A-Z a-z 0-9 . @ - _\n\
             stages[1].actions[0].inputArtifacts[0].name: artifact `Other` is not produced by any action\n"
        );
        assert_eq!(
            err,
            format!(
                "{}: pipeline \"tiny one\" is invalid: 2 problems\n",
                file.0.display()
            )
        );
    }

    #[test]
    fn parse_error_names_file_line_and_column() {
        let text = VALID.replace(
            r#""name": "Upload","#,
            r#""name": "Upload", "colour": "red","#,
        );
        let file = TempFile::new("unknown-field.json", &text);
        let (code, out, err) = run_on(&file.0);
        assert_eq!(code, EXIT_UNREADABLE);
        assert_eq!(out, "");
        let prefix = format!("{}: line 13, column ", file.0.display());
        assert!(err.starts_with(&prefix), "{err}");
        assert!(
            err.contains(": stages[1].actions[0].colour: unknown field `colour`"),
            "{err}"
        );
    }

    #[test]
    fn yaml_parse_error_is_located_too() {
        let file = TempFile::new(
            "bad.yaml",
            "name: p\nroleArn: r\nexecutionMode: FAST\nstages: []\n",
        );
        let (code, _, err) = run_on(&file.0);
        assert_eq!(code, EXIT_UNREADABLE);
        assert!(err.contains(": line 3, column "), "{err}");
        assert!(
            err.contains("executionMode: unknown variant `FAST`"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_unreadable() {
        let path = std::env::temp_dir().join(format!(
            "pipewright-validate-{}-does-not-exist.json",
            std::process::id()
        ));
        let (code, out, err) = run_on(&path);
        assert_eq!(code, EXIT_UNREADABLE);
        assert_eq!(out, "");
        assert!(
            err.starts_with(&format!("{}: cannot read: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn repository_sample_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/pipelines/sample.json");
        let (code, out, _) = run_on(&path);
        assert_eq!(code, EXIT_VALID, "{out}");
        let pipeline =
            pipewright_core::parse_pipeline(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let actions: usize = pipeline.stages.iter().map(|s| s.actions.len()).sum();
        let summary = format!(
            ": pipeline \"pipewright-sample\" is valid: {} stages, {actions} actions\n",
            pipeline.stages.len()
        );
        assert!(out.ends_with(&summary), "{out}");
    }

    #[test]
    fn load_refuses_an_invalid_declaration_with_located_problems() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../infra/pipelines/invalid/structure.json");
        let mut err = Vec::new();
        let code = load("create", &path, &mut err).expect_err("invalid");
        let err = String::from_utf8(err).unwrap();
        assert_eq!(code, EXIT_INVALID);
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        for line in expected.lines() {
            assert!(err.contains(&format!("{line}\n")), "{err}");
        }
        assert!(
            err.contains("pipewright create: InvalidStructureException: "),
            "{err}"
        );
        assert!(err.ends_with("; nothing was sent\n"), "{err}");
    }

    #[test]
    fn load_reads_a_valid_declaration_and_names_unreadable_ones() {
        let sample =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/pipelines/sample.yaml");
        let mut err = Vec::new();
        let pipeline = load("update", &sample, &mut err).expect("valid");
        assert_eq!(pipeline.name, "pipewright-sample-yaml");
        assert!(err.is_empty());

        let unknown = sample.with_file_name("invalid/unknown-field.json");
        let code = load("create", &unknown, &mut err).expect_err("unknown field");
        assert_eq!(code, EXIT_UNREADABLE);
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains("unknown field `timeout`"), "{err}");
    }

    #[test]
    fn plural_forms() {
        assert_eq!(plural(1, "stage"), "1 stage");
        assert_eq!(plural(0, "problem"), "0 problems");
        assert_eq!(plural(7, "action"), "7 actions");
    }
}
