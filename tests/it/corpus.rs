//! The bad-input corpus (`tests/corpus/`): every invalid configuration fails
//! `terraform plan` with its diagnostic on its attribute's line, and nothing in AWS
//! changes (no mutating request reaches the emulator).
//!
//! One case is one `.tf` file under `tests/corpus/<group>/`, starting with
//!
//! ```text
//! # what the case gets wrong
//! # summary: Invalid Region
//! # at: region = "nowhere"
//! ```
//!
//! `summary` is the diagnostic's summary and `at` the source line Terraform shows
//! in it. In the configuration, `@AMI@` stands for an available AMI of layer
//! `corpus-base`; the account also holds the core infrastructure ([`core_infra`]),
//! and `images/` of the workdir holds `tests/corpus/images/`. A `# gap: …` line
//! instead of `summary`/`at` marks input the provider does not reject at plan
//! yet: such a case only has to change nothing in AWS.
//!
//! `IMMUTABLE_CORPUS=app/name_too_long` (a prefix) runs matching cases only.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tests::{
    Account, LocalAws, RequestCounts, Workdir, core_infra, diagnostic_blocks, first_line_is, mutating,
    register_ami, repo_root, shows_source_line,
};

const TERRAFORM_BLOCK: &str = r#"terraform {
  required_providers {
    immutable = { source = "terraform.local/immutable/immutable" }
  }
}

"#;

/// Workers (each with its own account and Terraform workdir) per group.
const WORKERS: usize = 3;

#[derive(Debug, Clone)]
struct Case {
    /// `<group>/<file stem>`.
    name: String,
    what: String,
    expect: Expect,
    config: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// A diagnostic with this summary whose source excerpt shows this line.
    Diagnostic { summary: String, at: String },
    /// Not (fully) rejected at plan yet: why, as written in the case, and the
    /// summary of the diagnostic the plan does give, if any.
    Gap { why: String, summary: Option<String> },
}

fn corpus_dir() -> PathBuf {
    repo_root().join("tests").join("corpus")
}

fn parse_case(name: &str, text: &str) -> Result<Case, String> {
    let mut what = None;
    let (mut summary, mut at, mut gap) = (None, None, None);
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let line = line.trim_start_matches('#').trim();
        if let Some(v) = line.strip_prefix("summary:") {
            summary = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("at:") {
            at = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("gap:") {
            gap = Some(v.trim().to_owned());
        } else if what.is_none() && !line.is_empty() {
            what = Some(line.to_owned());
        }
    }
    let expect = match (summary, at, gap) {
        (Some(summary), Some(at), None) if !summary.is_empty() && !at.is_empty() => {
            Expect::Diagnostic { summary, at }
        }
        (summary, None, Some(why)) if !why.is_empty() => Expect::Gap { why, summary },
        _ => {
            return Err(format!(
                "{name}: needs `# summary:` and `# at:` lines, or a `# gap:` line (and optionally `# summary:`)"
            ));
        }
    };
    let what = what.ok_or_else(|| format!("{name}: the first comment line should say what is wrong"))?;
    Ok(Case { name: name.to_owned(), what, expect, config: text.to_owned() })
}

/// The cases of `group` (a directory under `tests/corpus/`), sorted by name.
fn load_group(group: &str) -> Vec<Case> {
    let dir = corpus_dir().join(group);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name");
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            parse_case(&format!("{group}/{stem}"), &text).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

const GROUPS: [&str; 5] = ["provider", "data_ami", "data_spot_price", "app", "layered_ami"];

/// What a case's `terraform plan` did, for [`check`].
struct Outcome<'a> {
    success: bool,
    stderr: &'a str,
    requests: &'a RequestCounts,
}

/// Whether the plan failed as the case expects, without mutating requests.
fn check(case: &Case, out: &Outcome<'_>) -> Result<(), String> {
    let changes = mutating(out.requests);
    if !changes.is_empty() {
        return Err(format!("mutating AWS requests during the plan: {}", changes.join(", ")));
    }
    let (summary, at) = match &case.expect {
        Expect::Gap { summary: None, .. } => return Ok(()),
        Expect::Gap { summary: Some(summary), .. } => (summary, None),
        Expect::Diagnostic { summary, at } => (summary, Some(at)),
    };
    if out.success {
        return Err(format!("plan succeeded; expected {summary:?}"));
    }
    let heading = format!("Error: {summary}");
    let blocks: Vec<&str> = diagnostic_blocks(out.stderr).filter(|b| first_line_is(b, &heading)).collect();
    if blocks.is_empty() {
        return Err(format!("no {heading:?} diagnostic in\n{}", out.stderr));
    }
    if let Some(at) = at
        && !blocks.iter().any(|block| shows_source_line(block, at))
    {
        return Err(format!("{heading:?} does not point at `{at}`:\n{}", blocks.join("\n")));
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

/// An account with the core infrastructure and an available AMI of layer
/// `corpus-base`, and a Terraform workdir for it, initialised.
fn worker_setup() -> (Workdir, String) {
    let account = LocalAws::shared().account();
    let ami = runtime().block_on(async {
        core_infra(&account).await.expect("core infrastructure");
        let ec2 = account.ec2().await;
        register_ami(&ec2, "corpus-base-1700000000", &[("Layer", "corpus-base"), ("Commit", &"a".repeat(40))])
            .await
            .expect("register AMI")
    });
    let workdir = Workdir::new(&account);
    copy_dir(&corpus_dir().join("images"), &workdir.path().join("images"));
    workdir.write("main.tf", TERRAFORM_BLOCK);
    workdir.init().expect("terraform init");
    (workdir, ami)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating images dir");
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().expect("file name")))
                .expect("copying support file");
        }
    }
}

fn run_case(workdir: &Workdir, ami: &str, case: &Case) -> Result<RequestCounts, String> {
    let account: &Account = workdir.account();
    let mut case = case.clone();
    case.config = case.config.replace("@AMI@", ami);
    if let Expect::Diagnostic { at, .. } = &mut case.expect {
        *at = at.replace("@AMI@", ami);
    }
    let case = &case;
    workdir.write("main.tf", &format!("{TERRAFORM_BLOCK}{}", case.config));
    account.reset_requests().map_err(|e| format!("resetting request counts: {e:#}"))?;
    let plan = workdir.terraform(&["plan", "-no-color", "-input=false"]);
    let requests = account.requests().map_err(|e| format!("reading request counts: {e:#}"))?;
    check(case, &Outcome { success: plan.success(), stderr: &plan.stderr, requests: &requests })?;
    if let Expect::Gap { why, .. } = &case.expect {
        let status = if plan.success() {
            "plan succeeds".to_owned()
        } else {
            let first = plan
                .stderr
                .lines()
                .map(|l| l.trim_start_matches(['╷', '│', ' ']))
                .find(|l| l.starts_with("Error: "));
            format!("plan fails with {}", first.unwrap_or("no error diagnostic"))
        };
        eprintln!("corpus: {} is a known gap ({why}); {status}", case.name);
    }
    Ok(requests)
}

/// Runs every case of `group` on [`WORKERS`] accounts in parallel; fails with
/// every case that did not behave.
fn run_group(group: &str) {
    let only = std::env::var("IMMUTABLE_CORPUS").ok().filter(|v| !v.is_empty());
    let cases: VecDeque<Case> = load_group(group)
        .into_iter()
        .filter(|c| only.as_deref().is_none_or(|prefix| c.name.starts_with(prefix)))
        .collect();
    if cases.is_empty() {
        return;
    }
    let total = cases.len();
    let queue = Mutex::new(cases);
    let failures = Mutex::new(Vec::new());
    let reads = Mutex::new(0u64);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(total) {
            scope.spawn(|| {
                let (workdir, ami) = worker_setup();
                loop {
                    let Some(case) = queue.lock().expect("queue").pop_front() else { break };
                    match run_case(&workdir, &ami, &case) {
                        Ok(requests) => *reads.lock().expect("reads") += requests.values().sum::<u64>(),
                        Err(problem) => failures
                            .lock()
                            .expect("failures")
                            .push(format!("{} ({}): {problem}", case.name, case.what)),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures");
    eprintln!(
        "corpus {group}: {} of {total} cases as expected, {} read-only AWS requests, none mutating",
        total - failures.len(),
        reads.into_inner().expect("reads"),
    );
    assert!(failures.is_empty(), "{} corpus case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn corpus_provider_block() {
    run_group("provider");
}

#[test]
fn corpus_data_source_ami() {
    run_group("data_ami");
}

#[test]
fn corpus_data_source_spot_price() {
    run_group("data_spot_price");
}

#[test]
fn corpus_app() {
    run_group("app");
}

#[test]
fn corpus_layered_ami() {
    run_group("layered_ami");
}

/// Every group has cases, every case parses, and the corpus covers at least 30
/// rejected inputs.
#[test]
fn corpus_is_well_formed() {
    let mut rejected = 0;
    for group in GROUPS {
        let cases = load_group(group);
        assert!(!cases.is_empty(), "no cases in tests/corpus/{group}");
        for case in &cases {
            if let Expect::Diagnostic { at, .. } = &case.expect {
                rejected += 1;
                let config = case.config.lines().skip_while(|l| l.starts_with('#'));
                assert!(
                    config.clone().any(|l| l.trim() == at),
                    "{}: the `at` line `{at}` is not a line of the configuration",
                    case.name
                );
            }
        }
    }
    assert!(rejected >= 30, "only {rejected} rejected inputs in the corpus");
    let dirs: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name != "images")
        .collect();
    for dir in dirs {
        assert!(GROUPS.contains(&dir.as_str()), "tests/corpus/{dir} is not run by any test");
    }
}

/// The checks can fail: a missing diagnostic, a wrong line, a successful plan and
/// a mutating request are each reported.
#[test]
fn corpus_check_rejects_what_it_should() {
    let case = parse_case(
        "provider/example",
        "# bad region\n# summary: Invalid Region\n# at: region = \"nowhere\"\n\nprovider \"immutable\" {}\n",
    )
    .expect("parse");
    let stderr = "\n╷\n│ Error: Invalid Region\n│ \n│   with provider[\"x\"],\n│   on main.tf line 8, in provider \"immutable\":\n│    8:   region = \"nowhere\"\n│ \n│ region must be an AWS region name\n╵\n";
    let reads: RequestCounts = [("ec2:DescribeImages".to_owned(), 2)].into();
    let ok = |stderr: &str, requests: &RequestCounts, success: bool| {
        check(&case, &Outcome { success, stderr, requests: &requests.clone() })
    };
    assert_eq!(ok(stderr, &reads, false), Ok(()));
    let plain = "\nError: Invalid Region\n\n  with provider[\"x\"],\n  on main.tf line 8, in provider \"immutable\":\n   8:   region = \"nowhere\"\n\nregion must be an AWS region name\n";
    assert_eq!(ok(plain, &reads, false), Ok(()), "without the frame Terraform draws on terminals");
    let elsewhere = format!(
        "\nError: Other\n\n   8:   region = \"nowhere\"\n{}",
        plain.replace("   8:   region = \"nowhere\"\n", "")
    );
    assert!(ok(&elsewhere, &reads, false).is_err(), "the line must be in the expected diagnostic");
    assert!(ok(stderr, &reads, true).is_err(), "a plan that succeeds fails the case");
    assert!(ok(&stderr.replace("Invalid Region", "Other"), &reads, false).is_err(), "wrong summary");
    assert!(ok(&stderr.replace("\"nowhere\"", "\"x\""), &reads, false).is_err(), "wrong line");
    let mut writes = reads.clone();
    writes.insert("ec2:CreateTags".to_owned(), 1);
    let err = ok(stderr, &writes, false).expect_err("a mutating request fails the case");
    assert!(err.contains("ec2:CreateTags x1"), "{err}");

    let gap = parse_case("app/gap", "# unchecked\n# gap: not validated\n\nresource \"x\" \"y\" {}\n")
        .expect("parse");
    assert_eq!(gap.expect, Expect::Gap { why: "not validated".to_owned(), summary: None });
    let gap_out = Outcome { success: true, stderr: "", requests: &writes };
    assert!(check(&gap, &gap_out).is_err(), "even a gap must not mutate");
    assert!(parse_case("app/none", "# nothing expected\n\nresource \"x\" \"y\" {}\n").is_err());
}
