//! Every example under `examples/` is a valid configuration: `terraform init` and
//! `terraform validate` pass against the provider, with no diagnostic, and make no
//! AWS request.
//!
//! An example is a directory under `examples/` holding `.tf` files: the runnable
//! configurations and their module (`terraform/*`, `terraform/modules/*`) and the
//! snippets the documentation is rendered from (`provider`, `resources/*`,
//! `data-sources/*`, `functions/*`). Hidden directories are skipped: a `.terraform/`
//! left by running an example in place holds Terraform's copies of modules, not
//! examples. `examples/images` (the Packer sources of the demo lineage and the
//! templates generated under `out/`) has no `.tf` file, so it is no example itself;
//! it supplies the templates the snippets name.
//!
//! Each example gets its own account and [`Workdir`], and is staged there at its path
//! under `examples/`, so that a relative module source (`../modules/layer-chain`)
//! resolves as it does in the repository; Terraform runs in it with `-chdir`. What
//! the example names by relative path (a module, `file("${path.module}/...")`, a
//! `packer_template`) is copied along: any quoted string that names a file or folder
//! there is taken.
//!
//! A snippet (an example without a `required_providers` block) would get the
//! provider from `registry.terraform.io/hashicorp/immutable`, which this machine
//! cannot reach: the test adds `_providers.tf` mapping `immutable` to the source the
//! test mirror serves. Snippets are written for a root module in a project laid out
//! as `examples/` is, the Packer templates under `images/out/`: a path a snippet
//! names that is not next to it is taken from `examples/`.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use tests::{LocalAws, PROVIDER_SOURCE, Workdir, diagnostic_blocks, repo_root};

fn examples_root() -> PathBuf {
    repo_root().join("examples")
}

fn entries(dir: &Path) -> Vec<std::fs::DirEntry> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())))
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .collect();
    entries.sort_by_key(|entry| entry.file_name());
    entries
}

fn is_tf(path: &Path) -> bool {
    path.is_file() && path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".tf"))
}

/// The `.tf` files directly in `dir`.
fn tf_files(dir: &Path) -> Vec<PathBuf> {
    entries(dir).into_iter().map(|entry| entry.path()).filter(|path| is_tf(path)).collect()
}

/// The directories under `root` holding `.tf` files, relative to `root`, sorted.
fn example_dirs(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut queue = vec![PathBuf::new()];
    while let Some(rel) = queue.pop() {
        let dir = root.join(&rel);
        if !tf_files(&dir).is_empty() {
            found.push(rel.clone());
        }
        for entry in entries(&dir) {
            if entry.path().is_dir() {
                queue.push(rel.join(entry.file_name()));
            }
        }
    }
    found.sort();
    found
}

/// The quoted strings of the HCL `text` that may be relative paths, with a leading
/// `${path.module}/` or `${path.root}/` taken off. Comment lines are skipped;
/// strings with interpolations, wildcards or escapes, and absolute paths, are not
/// paths an example can ship.
fn path_candidates(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            let literal = &after[..end];
            rest = &after[end + 1..];
            let path = ["${path.module}/", "${path.root}/"]
                .iter()
                .fold(literal, |s, prefix| s.strip_prefix(prefix).unwrap_or(s));
            let plain = !path.is_empty() && !path.starts_with('/') && !path.contains(['$', '%', '*', '\\']);
            if plain {
                found.push(path.to_owned());
            }
        }
    }
    found
}

/// `path` with `.` and `..` resolved lexically; `None` when it is absolute or climbs
/// above its start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn copy_file(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to).map(drop).map_err(|e| format!("copying {}: {e}", from.display()))
}

/// Copies the folder `from` to `to`, hidden entries left out.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for entry in entries(from) {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            copy_file(&path, &target)?;
        }
    }
    Ok(())
}

/// Copies example `example` (relative to `root`) into `work` at the same relative
/// path, with the modules and files it names by relative path (see the module
/// documentation); `snippet` also looks names up in `root`. Returns what was staged,
/// relative to `work`.
fn stage(root: &Path, example: &Path, snippet: bool, work: &Path) -> Result<Vec<PathBuf>, String> {
    let mut staged = BTreeSet::new();
    // (where a configuration folder is under `root`, where it goes under `work`)
    let mut folders = VecDeque::from([(example.to_path_buf(), example.to_path_buf())]);
    let mut seen = BTreeSet::new();
    while let Some((source, dest)) = folders.pop_front() {
        if !seen.insert(dest.clone()) {
            continue;
        }
        for file in tf_files(&root.join(&source)) {
            let name = file.file_name().expect("file name");
            copy_file(&file, &work.join(&dest).join(name))?;
            staged.insert(dest.join(name));
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            for candidate in path_candidates(&text) {
                let Some(target) = normalize(&dest.join(&candidate)) else { continue };
                let mut bases = vec![source.clone()];
                if snippet && source == example {
                    bases.push(PathBuf::new());
                }
                let found = bases.iter().filter_map(|base| normalize(&base.join(&candidate))).find(|found| {
                    // The example's own folder or one above it is no file it ships.
                    !source.starts_with(found) && root.join(found).exists()
                });
                let Some(found) = found else { continue };
                let from = root.join(&found);
                if from.is_file() {
                    copy_file(&from, &work.join(&target))?;
                    staged.insert(target);
                } else if !tf_files(&from).is_empty() {
                    folders.push_back((found, target));
                } else {
                    copy_tree(&from, &work.join(&target))?;
                    staged.insert(target);
                }
            }
        }
    }
    Ok(staged.into_iter().collect())
}

/// Whether the configuration in `dir` declares its providers.
fn declares_providers(dir: &Path) -> bool {
    tf_files(dir)
        .iter()
        .any(|file| std::fs::read_to_string(file).is_ok_and(|text| text.contains("required_providers")))
}

/// `terraform init` and `terraform validate` of `example` (relative to
/// `examples/`) in a fresh account: what went wrong, if anything.
fn check_example(example: &Path) -> Result<(), String> {
    let root = examples_root();
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    let snippet = !declares_providers(&root.join(example));
    let staged = stage(&root, example, snippet, workdir.path())?;
    if snippet {
        // Without it, Terraform looks for registry.terraform.io/hashicorp/immutable.
        workdir.write(
            &example.join("_providers.tf").to_string_lossy(),
            &format!(
                "terraform {{\n  required_providers {{\n    immutable = {{ source = \"{PROVIDER_SOURCE}\" }}\n  }}\n}}\n"
            ),
        );
    }
    let chdir = format!("-chdir={}", example.display());
    let staged = staged.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let init = workdir.terraform(&[&chdir, "init", "-no-color", "-input=false"]);
    if !init.success() {
        return Err(format!("terraform init failed (staged: {staged})\n{init}"));
    }
    let validate = workdir.terraform(&[&chdir, "validate", "-no-color"]);
    let diagnostics =
        diagnostic_blocks(&validate.stdout).count() + diagnostic_blocks(&validate.stderr).count();
    if !validate.success() || diagnostics > 0 {
        return Err(format!("terraform validate failed or warned (staged: {staged})\n{validate}"));
    }
    let requests = account.requests().map_err(|e| format!("reading request counts: {e:#}"))?;
    if requests.values().any(|count| *count > 0) {
        return Err(format!("init and validate made AWS requests: {requests:?}"));
    }
    Ok(())
}

#[test]
fn every_example_validates() {
    let root = examples_root();
    let examples = example_dirs(&root);
    for group in ["provider", "resources", "data-sources", "functions", "terraform"] {
        assert!(
            examples.iter().any(|example| example.starts_with(group)),
            "no example under examples/{group}: {examples:?}"
        );
    }
    let results: Vec<(PathBuf, Result<(), String>)> = std::thread::scope(|scope| {
        let running: Vec<_> = examples
            .iter()
            .map(|example| (example.clone(), scope.spawn(move || check_example(example))))
            .collect();
        running
            .into_iter()
            .map(|(example, run)| {
                let result = run.join().unwrap_or_else(|_| Err("the check panicked".to_owned()));
                (example, result)
            })
            .collect()
    });
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(example, result)| {
            result.as_ref().err().map(|problem| format!("== examples/{}: {problem}", example.display()))
        })
        .collect();
    eprintln!(
        "examples: {} of {} validate without AWS requests",
        results.len() - failures.len(),
        results.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} example(s) fail:\n\n{}",
        failures.len(),
        results.len(),
        failures.join("\n\n")
    );
}

/// The staging reads the paths an example names, and only those.
#[test]
fn staging_reads_the_paths_an_example_names() {
    let text = r#"
# packer_template = "commented/out.json"
module "images" {
  source = "../modules/layer-chain"
}
resource "x" "y" {
  a = file("${path.module}/manifest.json")
  b = "images/out/ubuntu-1804/packer.json" # "trailing"
  c = "${var.x}/z"
  d = "/etc/passwd"
  e = "ubuntu/*"
}
"#;
    assert_eq!(
        path_candidates(text),
        [
            "images",
            "../modules/layer-chain",
            "x",
            "y",
            "manifest.json",
            "images/out/ubuntu-1804/packer.json",
            "trailing"
        ]
    );
    assert_eq!(
        normalize(Path::new("terraform/layered/../modules/m")),
        Some(PathBuf::from("terraform/modules/m"))
    );
    assert_eq!(normalize(Path::new("./a/./b")), Some(PathBuf::from("a/b")));
    assert_eq!(normalize(Path::new("a/../../b")), None);
    assert_eq!(normalize(Path::new("/a")), None);
}
