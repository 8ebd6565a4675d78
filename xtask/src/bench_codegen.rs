//! `immutable-codegen` throughput: generating the templates of a 1,000-layer file
//! (read, check, fingerprint every provisioned file, render, write), per layer, as a
//! ratio to copying the generated files with `cp -r` in the same run.

use anyhow::{Context as _, Result, bail};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const LAYERS: usize = 1_000;
const RUNS: usize = 5;
/// A layer's children: a wide, five-level-deep lineage like a large image farm.
const FAN_OUT: usize = 4;
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// One row of the benchmark table: (what, measured, baseline, ratio).
pub fn codegen_row() -> Result<(String, String, String, f64)> {
    let dir = tempfile_dir()?;
    let layers_file = write_layers(dir.path())?;

    let mut generate = Vec::new();
    let mut copy = Vec::new();
    for run in 0..RUNS {
        let out = dir.path().join(format!("out-{run}"));
        let started = Instant::now();
        let layers = codegen::layers::load(&layers_file)?;
        let files =
            codegen::generate(&layers, codegen::Format::Json, &codegen::Commit::Given(COMMIT.into()), &out)?;
        codegen::write(&out, &files)?;
        generate.push(started.elapsed());
        if files.len() != LAYERS {
            bail!("generated {} templates for {LAYERS} layers", files.len());
        }

        let copied = dir.path().join(format!("copy-{run}"));
        let started = Instant::now();
        let status = Command::new("cp").arg("-r").arg(&out).arg(&copied).status().context("running cp -r")?;
        copy.push(started.elapsed());
        if !status.success() {
            bail!("cp -r {} failed", out.display());
        }
    }
    let (g, c) = (median(generate), median(copy));
    let per_layer = |d: Duration| format!("{:.1} µs/layer", d.as_secs_f64() * 1e6 / LAYERS as f64);
    Ok((
        format!("immutable-codegen packer, {LAYERS}-layer file (median of {RUNS})"),
        per_layer(g),
        format!("{} (cp -r of the generated templates)", per_layer(c)),
        g.as_secs_f64() / c.as_secs_f64().max(1e-9),
    ))
}

fn tempfile_dir() -> Result<TempDir> {
    let path = std::env::temp_dir().join(format!("immutable-codegen-bench-{}", std::process::id()));
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(TempDir(path))
}

/// A folder removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A layers file with one root and `LAYERS - 1` descendants, each provisioning a
/// script of its own and a folder shared by all.
fn write_layers(dir: &Path) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("scripts"))?;
    std::fs::create_dir_all(dir.join("shared"))?;
    for name in ["motd", "sysctl.conf", "limits.conf"] {
        std::fs::write(dir.join("shared").join(name), format!("# {name}\n{}\n", "x = 1\n".repeat(20)))?;
    }
    let mut toml = String::from(
        "project = \"bench\"\n\n[defaults]\nregion = \"eu-west-1\"\ninstance_type = \"t3.small\"\nssh_username = \"ubuntu\"\ntags = { Team = \"platform\" }\n",
    );
    for i in 0..LAYERS {
        let id = format!("layer-{i:04}");
        std::fs::write(
            dir.join("scripts").join(format!("{id}.sh")),
            format!("#!/bin/sh\nset -eu\napt-get install -y package-{i}\necho {id} > /etc/layer\n"),
        )?;
        write!(toml, "\n[[layer]]\nid = \"{id}\"\nname = \"Layer {i}\"\n")?;
        if i == 0 {
            toml.push_str("source = { owners = [\"099720109477\"], name = \"ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-amd64-server-*\" }\n");
        } else {
            writeln!(toml, "parent = \"layer-{:04}\"", (i - 1) / FAN_OUT)?;
        }
        write!(
            toml,
            "\n[[layer.provisioner]]\ntype = \"file\"\nsource = \"shared/\"\ndestination = \"/tmp/shared\"\n\n\
             [[layer.provisioner]]\ntype = \"shell\"\nscripts = [\"scripts/{id}.sh\"]\n"
        )?;
    }
    let file = dir.join("layers.toml");
    std::fs::write(&file, toml)?;
    Ok(file)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
