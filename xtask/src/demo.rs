//! `cargo xtask demo`: the product end to end on a laptop, no AWS account needed.

use anyhow::{Context as _, Result};
use tests::{LayerSeed, LocalAws, Workdir, seed_lineage};

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

    step("done");
    println!("    the AMI id and its lineage above came from the emulator through the provider.");
    aws.stop();
    Ok(())
}

fn commit(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

fn step(text: &str) {
    println!("\n==> {text}");
}
