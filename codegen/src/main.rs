//! The `immutable-codegen` command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use codegen::{Commit, Error, Format};
use std::path::PathBuf;
use std::process::ExitCode;

/// Packer templates and a build plan for a lineage of AMI layers, from one layers file.
#[derive(Parser)]
#[command(name = "immutable-codegen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct LayersArg {
    /// The layers file (TOML).
    #[arg(long, short = 'f', value_name = "FILE", default_value = "layers.toml")]
    layers: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Write one Packer template per layer (or, with --check, compare them).
    Packer {
        #[command(flatten)]
        layers: LayersArg,
        /// Output folder: one `<layer>/packer.json` (or `.pkr.hcl`) per layer.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Template format [default: json; hcl when the layers file sets
        /// `packer = ">= 1.10"`, whose templates are HCL2 only].
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Commit for the `Commit` tag (default: `git rev-parse HEAD` of the repository
        /// holding the layers file).
        #[arg(long, value_name = "SHA")]
        commit: Option<String>,
        /// Write nothing; exit 1 naming every file that differs from what would be
        /// generated. Without --commit, each file's own commit is kept.
        #[arg(long)]
        check: bool,
    },
    /// Print the layers in build order, as waves of layers that can build in parallel.
    Plan {
        #[command(flatten)]
        layers: LayersArg,
        /// Only the layers whose fingerprint changed since this git revision, and
        /// their descendants.
        #[arg(long, value_name = "REF")]
        changed_since: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the layers file.
    Schema,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// Packer's legacy JSON template.
    Json,
    /// HCL2 (`.pkr.hcl`).
    Hcl,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            let code = error.downcast_ref::<Error>().map_or(1, Error::exit_code);
            match error.downcast_ref::<Error>() {
                Some(Error::Invalid(diagnostics)) => diagnostics.iter().for_each(|d| eprintln!("error: {d}")),
                _ => eprintln!("error: {error:#}"),
            }
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Packer { layers, out, format, commit, check } => {
            let layers = codegen::layers::load(&layers.layers)?;
            let format = match format {
                Some(FormatArg::Json) => Format::Json,
                Some(FormatArg::Hcl) => Format::Hcl,
                None if layers.target.is_current() => Format::Hcl,
                None => Format::Json,
            };
            // Worth reading, not worth stopping for: the templates are still written.
            for warning in &layers.warnings {
                eprintln!("warning: {warning}");
            }
            let commit = match (commit, check) {
                (Some(c), _) => Commit::Given(c),
                (None, true) => Commit::OnDiskElseHead,
                (None, false) => Commit::Head,
            };
            let files = codegen::generate(&layers, format, &commit, &out)?;
            if check {
                let differences = codegen::check(&out, format, &files)?;
                if differences.is_empty() {
                    println!("{} templates up to date in {}", files.len(), out.display());
                    return Ok(ExitCode::SUCCESS);
                }
                for d in &differences {
                    eprintln!("{d}");
                }
                eprintln!("run `immutable-codegen packer --out {}` to regenerate", out.display());
                return Ok(ExitCode::FAILURE);
            }
            codegen::write(&out, &files)?;
            for file in &files {
                println!("{}", out.join(&file.path).display());
            }
            let (removed, kept) = codegen::remove_stale(&out, format, &files)?;
            for path in removed {
                println!("removed {} (no such layer any more)", path.display());
            }
            for path in kept {
                eprintln!(
                    "warning: {} has no layer in the layers file, but was not generated here: left alone",
                    path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { layers, changed_since, json } => {
            let (plan, note) = codegen::plan::plan_file(&layers.layers, changed_since.as_deref())?;
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&plan).context("encoding the plan")?);
            } else {
                print!("{}", plan.text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&codegen::model::json_schema())
                    .context("encoding the schema")?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
