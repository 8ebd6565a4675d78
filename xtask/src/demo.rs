//! `cargo xtask demo`: the product end to end on a laptop, no AWS account needed.

use anyhow::{Context as _, Result};
use tests::{LayerSeed, LocalAws, Workdir, core_infra, register_ami, seed_lineage};

pub fn run() -> Result<()> {
    step("building the provider");
    crate::build_provider(crate::Profile::Debug)?;

    step("starting the local AWS emulator (first run creates its Python venv)");
    let aws = LocalAws::start()?;
    println!("    emulator at {}", aws.endpoint());
    let account = aws.account();

    step("seeding an AMI lineage: ubuntu-1804 -> rails-base -> demo-web-app");
    let runtime = tokio::runtime::Runtime::new()?;
    let amis = runtime.block_on(async {
        let ec2 = account.ec2().await;
        let layers = [
            LayerSeed::new("ubuntu-1804", "Ubuntu 18.04", commit('a')),
            LayerSeed::new("rails-base", "Rails base", commit('b')).parent(0),
            LayerSeed::new("demo-web-app", "Demo web app", commit('c')).parent(1),
        ];
        seed_lineage(&ec2, &layers).await
    });
    for (layer, ami) in ["ubuntu-1804", "rails-base", "demo-web-app"].iter().zip(&amis) {
        println!("    {layer:<14} {ami}");
    }

    step("terraform init + apply of examples/terraform/lineage");
    let workdir = Workdir::new(&account);
    let example = crate::repo_root().join("examples/terraform/lineage/main.tf");
    let config =
        std::fs::read_to_string(&example).with_context(|| format!("reading {}", example.display()))?;
    workdir.write("main.tf", &config);
    workdir.init()?;
    let applied = workdir.apply()?;
    print!("{}", applied.stdout);

    step("creating the core infrastructure, found later by name: web-sg, target group web, web-profile");
    let infra = runtime.block_on(core_infra(&account))?;
    println!("    target group {}", infra.target_group_arn);

    step("terraform apply of examples/terraform/app: demo-web-app on a Spot Fleet behind target group web");
    let app = Workdir::new(&account);
    let config = std::fs::read_to_string(crate::repo_root().join("examples/terraform/app/main.tf"))?;
    app.write("main.tf", &config);
    app.init()?;
    apply_showing_rollout(&app)?;
    let blue = text(&app, "fleet_id")?;
    println!(
        "    serving: fleet {blue}, generation {}, commit {}",
        text(&app, "generation")?,
        text(&app, "commit")?
    );

    step("baking a new build of demo-web-app (commit dddd…) on the same rails-base");
    let new_ami = runtime.block_on(async {
        let ec2 = account.ec2().await;
        let commit = commit('d');
        register_ami(
            &ec2,
            "demo-web-app-dddddddddddd",
            &[
                ("Name", "Demo web app"),
                ("Layer", "demo-web-app"),
                ("Commit", &commit),
                ("ParentLayer", "rails-base"),
                ("ParentAMI", &amis[1]),
                ("ManagedBy", "immutable"),
            ],
        )
        .await
    })?;
    println!("    demo-web-app   {new_ami}");

    step("terraform apply again: blue/green rollout to the new build, gated on target health");
    apply_showing_rollout(&app)?;
    println!(
        "    serving: fleet {}, generation {}, commit {}; the old fleet {blue} is cancelled",
        text(&app, "fleet_id")?,
        text(&app, "generation")?,
        text(&app, "commit")?
    );

    step("done");
    println!("    everything above ran against the local emulator through the real provider and Terraform.");
    aws.stop();
    Ok(())
}

/// `terraform apply`, printing the provider's progress lines (from Terraform's log).
fn apply_showing_rollout(workdir: &Workdir) -> Result<()> {
    let out = workdir.terraform_with_env(
        &["apply", "-auto-approve", "-no-color"],
        &[("TF_LOG", "info"), ("TF_LOG_PROVIDER", "info")],
    );
    for line in out.stderr.lines() {
        if let Some((_, message)) = line.split_once("provider.terraform-provider-immutable: ") {
            // Terraform appends the line's fields as `: key=value ...`.
            let message = message.split(": @").next().unwrap_or(message);
            let message = message.split(": app=").next().unwrap_or(message);
            let message = message.split(": region=").next().unwrap_or(message);
            println!("    | {message}");
        }
    }
    if !out.success() {
        anyhow::bail!("terraform apply failed\n{out}");
    }
    Ok(())
}

/// An output as plain text.
fn text(workdir: &Workdir, name: &str) -> Result<String> {
    let value = workdir.output(name)?;
    Ok(value.as_str().map_or_else(|| value.to_string(), str::to_owned))
}

fn commit(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

fn step(text: &str) {
    println!("\n==> {text}");
}
