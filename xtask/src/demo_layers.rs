//! The layered-AMI part of the demo: build ubuntu-1804 -> rails-base -> demo-web-app
//! with `immutable_layered_ami` and the native builder, from
//! examples/terraform/layered, then show that a second apply builds nothing.
//!
//! [`build_chain`] works on any emulator account; `cargo xtask demo-layers` runs it
//! on a fresh emulator.

use anyhow::{Context as _, Result};
use tests::{Account, BuilderPlayer, LocalAws, Workdir, register_ami};

/// `cargo xtask demo-layers`.
pub fn run() -> Result<()> {
    step("building the provider");
    crate::build_provider(crate::Profile::Debug)?;
    step("starting the local AWS emulator (first run creates its Python venv)");
    let aws = LocalAws::start()?;
    println!("    emulator at {}", aws.endpoint());
    let result = build_chain(&aws.account());
    aws.stop();
    result
}

/// Builds the example's three layers in `account` and shows that a second plan
/// builds nothing.
pub fn build_chain(account: &Account) -> Result<()> {
    let chain = Chain::new(account)?;
    step("terraform apply of examples/terraform/layered: three layers, native builder");
    print!("{}", chain.build(&"e".repeat(40))?);
    step("terraform plan again: every layer is adopted, nothing to build");
    println!("    {}", chain.plan_summary()?);
    Ok(())
}

/// The layered example in a Terraform working directory, with a stand-in for the
/// builder instances powering themselves off.
pub struct Chain {
    workdir: Workdir,
    _player: BuilderPlayer,
}

impl Chain {
    pub fn new(account: &Account) -> Result<Self> {
        step("registering a stand-in upstream image (the emulator has no Ubuntu of ours)");
        let runtime = tokio::runtime::Runtime::new()?;
        let upstream = runtime.block_on(async {
            let ec2 = account.ec2().await;
            register_ami(&ec2, "upstream-ubuntu-bionic-1700000000", &[]).await
        })?;
        println!("    upstream image {upstream}");

        // The emulator runs no user data: this stands in for the builder instances
        // powering themselves off when their provisioning is done.
        let player = BuilderPlayer::start(account);
        let workdir = Workdir::new(account);
        let examples = crate::repo_root().join("examples/terraform");
        for file in ["main.tf", "variables.tf", "outputs.tf"] {
            let path = examples.join("modules/layer-chain").join(file);
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            workdir.write(&format!("modules/layer-chain/{file}"), &text);
        }
        let root = examples.join("layered/main.tf");
        let config = std::fs::read_to_string(&root).with_context(|| format!("reading {}", root.display()))?;
        workdir.write("main.tf", &config.replace("../modules/layer-chain", "./modules/layer-chain"));
        workdir.init()?;
        Ok(Self { workdir, _player: player })
    }

    /// Applies the chain for `commit`; returns Terraform's output.
    pub fn build(&self, commit: &str) -> Result<String> {
        self.workdir.write(
            "terraform.tfvars",
            &format!(
                "commit        = \"{commit}\"\nsource_owners = [\"self\"]\nsource_name   = \"upstream-ubuntu-bionic-*\"\n"
            ),
        );
        Ok(self.workdir.apply()?.stdout)
    }

    /// The summary line of a plan (`No changes.` or `Plan: …`).
    pub fn plan_summary(&self) -> Result<String> {
        let plan = self.workdir.plan()?;
        let summary = plan.stdout.lines().find(|l| l.starts_with("No changes.") || l.starts_with("Plan:"));
        Ok(summary.unwrap_or("(no summary line)").to_owned())
    }
}

fn step(text: &str) {
    println!("\n==> {text}");
}
