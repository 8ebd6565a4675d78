//! `cargo xtask release` and `cargo xtask install`: the provider as Terraform installs it.
//!
//! A release is what a provider registry serves for one version, under the names the
//! registry protocol expects:
//!
//! - `terraform-provider-immutable_<version>_<os>_<arch>.zip` per platform, holding the
//!   one executable `terraform-provider-immutable_v<version>` (mode 0755, every time
//!   stamp 1980-01-01, so that the same binary always packs to the same bytes);
//! - `terraform-provider-immutable_<version>_manifest.json`, declaring plugin protocol
//!   6.0, the only one the provider speaks;
//! - `terraform-provider-immutable_<version>_SHA256SUMS`, `sha256sum -c` format, over
//!   the zips and the manifest (a publisher signs this file with its own key);
//! - `mirror/`, the same zips in Terraform's packed filesystem-mirror layout
//!   (`<host>/<namespace>/<type>/<zip>`), for `terraform init -plugin-dir=<dist>/mirror`
//!   or a `filesystem_mirror` block.
//!
//! The version is the provider crate's (`provider/Cargo.toml`), which the binary also
//! reports with `--version`; every build is checked to be an ELF executable for its
//! platform's machine and to report that version before it is packed (another
//! platform's under qemu's user-mode emulation, when qemu-user is installed).
//!
//! linux_arm64 is cross-compiled with rustup's `aarch64-unknown-linux-gnu` standard
//! library and Debian's `gcc-aarch64-linux-gnu` as linker and C compiler (aws-lc, the
//! TLS stack's cryptography, is C): both come from package registries this project
//! already uses, where a zig-based linker would add a toolchain of its own. The binary
//! needs the glibc of the Debian release it was built on (or newer).

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The provider's type name, as in `terraform-provider-<type>` and the source address.
const TYPE: &str = "immutable";
const BINARY: &str = "terraform-provider-immutable";

/// The version being released: the provider crate's.
pub const VERSION: &str = provider::SERVE_OPTIONS.version;

/// A platform a release is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// Terraform's name: `linux_amd64`.
    pub name: &'static str,
    /// Rust's target triple.
    pub triple: &'static str,
    /// The ELF header's `e_machine` of its executables.
    elf_machine: u16,
}

pub const PLATFORMS: [Platform; 2] = [
    Platform { name: "linux_amd64", triple: "x86_64-unknown-linux-gnu", elf_machine: 0x3e },
    Platform { name: "linux_arm64", triple: "aarch64-unknown-linux-gnu", elf_machine: 0xb7 },
];

impl Platform {
    /// The platform this xtask runs on, if it is one a release is built for.
    pub fn host() -> Option<Platform> {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            _ => return None,
        };
        let name = format!("{}_{arch}", std::env::consts::OS);
        PLATFORMS.into_iter().find(|p| p.name == name)
    }

    fn named(name: &str) -> Result<Platform> {
        PLATFORMS.into_iter().find(|p| p.name == name).with_context(|| {
            let known: Vec<_> = PLATFORMS.iter().map(|p| p.name).collect();
            format!("unknown platform {name:?}: a release is built for {}", known.join(", "))
        })
    }

    fn is_host(&self) -> bool {
        Platform::host() == Some(*self)
    }
}

/// A provider binary built for a platform.
#[derive(Debug, Clone)]
pub struct Build {
    pub platform: Platform,
    pub binary: PathBuf,
}

/// What [`pack`] wrote, paths relative to the release folder.
#[derive(Debug)]
pub struct Release {
    pub dir: PathBuf,
    pub zips: Vec<String>,
    pub manifest: String,
    pub sums: String,
    /// The folder to give `terraform init -plugin-dir`.
    pub mirror: PathBuf,
}

pub fn zip_name(version: &str, platform: &Platform) -> String {
    format!("{BINARY}_{version}_{}.zip", platform.name)
}

const RELEASE_USAGE: &str = "\
cargo xtask release [--target <os_arch>]... [--out <dir>]

Builds the provider (release profile) for each target, linux_amd64 and linux_arm64
unless --target narrows it, and writes the registry's files for this version into
<dir> (default: target/dist/<version>): a zip per platform, _manifest.json (protocol
6.0), _SHA256SUMS, and mirror/ for `terraform init -plugin-dir=<dir>/mirror`.
linux_arm64 is cross-compiled: it needs rustup's aarch64-unknown-linux-gnu target and
Debian's gcc-aarch64-linux-gnu, which this command installs when it can.
";

/// `cargo xtask release`.
pub fn release(args: &[String]) -> Result<()> {
    let mut targets = Vec::new();
    let mut out = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--target" => {
                let platform = Platform::named(rest.next().context("--target needs a value")?)?;
                if !targets.contains(&platform) {
                    targets.push(platform);
                }
            }
            "--out" => out = Some(PathBuf::from(rest.next().context("--out needs a folder")?)),
            "-h" | "--help" => {
                print!("{RELEASE_USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{RELEASE_USAGE}"),
        }
    }
    if targets.is_empty() {
        targets = PLATFORMS.to_vec();
    }
    let out = out.unwrap_or_else(|| ::tests::target_dir().join("dist").join(VERSION));
    let mut builds = Vec::new();
    for platform in targets {
        eprintln!("building {BINARY} {VERSION} for {} ({})", platform.name, platform.triple);
        builds.push(Build { platform, binary: build_release(&platform)? });
    }
    let release = pack(&builds, VERSION, &out)?;
    println!("release {VERSION} in {}:", release.dir.display());
    for file in release.zips.iter().chain([&release.manifest, &release.sums]) {
        println!("  {file}");
    }
    println!(
        "check it with `cd {} && sha256sum -c {}`; install it with\n  terraform init -plugin-dir={}",
        release.dir.display(),
        release.sums,
        release.mirror.display()
    );
    Ok(())
}

/// Builds the provider with the release profile for `platform`: the host's build goes
/// where `cargo build --release` puts it (shared with the benchmarks), another
/// platform's under `target/<triple>/release`.
fn build_release(platform: &Platform) -> Result<PathBuf> {
    if platform.is_host() {
        return crate::build_provider(crate::Profile::Release);
    }
    if platform.triple != "aarch64-unknown-linux-gnu" {
        bail!("cross-compiling for {} is not set up", platform.name);
    }
    ensure_cross_aarch64()?;
    let mut command = crate::cargo();
    command.args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "provider",
        "--bin",
        BINARY,
        "--target",
        platform.triple,
    ]);
    let gcc = "aarch64-linux-gnu-gcc";
    command
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", gcc)
        .env("CC_aarch64_unknown_linux_gnu", gcc)
        .env("CXX_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-g++")
        .env("AR_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-ar");
    crate::run(command)?;
    let binary = ::tests::target_dir().join(platform.triple).join("release").join(BINARY);
    if !binary.is_file() {
        bail!("built the provider for {} but found no binary at {}", platform.name, binary.display());
    }
    Ok(binary)
}

/// rustup's standard library for aarch64 Linux and Debian's cross compiler, installed
/// when missing (the compiler only as root; otherwise the one command to run).
fn ensure_cross_aarch64() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (cross-compiling needs rustup's standard library for the target)")?;
    if !String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == "aarch64-unknown-linux-gnu") {
        eprintln!("adding rustup target aarch64-unknown-linux-gnu");
        let mut add = Command::new("rustup");
        add.args(["target", "add", "aarch64-unknown-linux-gnu"]);
        crate::run(add).context("adding the aarch64-unknown-linux-gnu standard library")?;
    }
    let has_gcc =
        Command::new("aarch64-linux-gnu-gcc").arg("--version").output().is_ok_and(|o| o.status.success());
    if !has_gcc {
        crate::test_cmd::apt_install(
            &["gcc-aarch64-linux-gnu", "g++-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
            "building for linux_arm64 needs",
            "cargo xtask release",
        )?;
    }
    Ok(())
}

/// Writes the release of `builds` (one per platform) as `version` into `dir`.
pub fn pack(builds: &[Build], version: &str, dir: &Path) -> Result<Release> {
    if builds.is_empty() {
        bail!("nothing to pack");
    }
    let mirror = dir.join("mirror");
    // What an earlier release into this folder wrote goes first, so that the folder
    // holds exactly what the sums list.
    if mirror.exists() {
        std::fs::remove_dir_all(&mirror).with_context(|| format!("removing {}", mirror.display()))?;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&format!("{BINARY}_{version}_")) {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("removing {}", entry.path().display()))?;
            }
        }
    }
    let package_dir = mirror.join(provider::SOURCE_ADDRESS);
    std::fs::create_dir_all(&package_dir).with_context(|| format!("creating {}", package_dir.display()))?;
    let mut zips = Vec::new();
    for build in builds {
        check_binary(build, version)?;
        let name = zip_name(version, &build.platform);
        let path = dir.join(&name);
        write_zip(&build.binary, &format!("{BINARY}_v{version}"), &path)?;
        std::fs::copy(&path, package_dir.join(&name))
            .with_context(|| format!("copying {name} into {}", package_dir.display()))?;
        zips.push(name);
    }
    let manifest = format!("{BINARY}_{version}_manifest.json");
    let manifest_json = serde_json::json!({ "version": 1, "metadata": { "protocol_versions": ["6.0"] } });
    std::fs::write(dir.join(&manifest), format!("{manifest_json:#}\n"))
        .with_context(|| format!("writing {manifest}"))?;
    let sums = format!("{BINARY}_{version}_SHA256SUMS");
    let mut listed: Vec<&String> = zips.iter().chain([&manifest]).collect();
    listed.sort();
    let mut text = String::new();
    for file in listed {
        text.push_str(&format!("{}  {file}\n", sha256_file(&dir.join(file))?));
    }
    std::fs::write(dir.join(&sums), text).with_context(|| format!("writing {sums}"))?;
    Ok(Release { dir: dir.to_path_buf(), zips, manifest, sums, mirror })
}

/// Refuses a binary that is not an ELF executable for its platform, or, when it runs
/// here, does not report `version`.
fn check_binary(build: &Build, version: &str) -> Result<()> {
    let mut header = [0u8; 20];
    std::fs::File::open(&build.binary)
        .and_then(|mut f| f.read_exact(&mut header))
        .with_context(|| format!("reading {}", build.binary.display()))?;
    let machine = u16::from_le_bytes([header[18], header[19]]);
    if &header[..4] != b"\x7fELF" || machine != build.platform.elf_machine {
        bail!("{} is not an executable for {}", build.binary.display(), build.platform.name);
    }
    let reported = if build.platform.is_host() {
        Some(reported_version(&build.binary)?)
    } else {
        emulated_version(build)?
    };
    match reported {
        Some(reported) if reported != version => {
            bail!("{} reports version {reported}, the release is {version}", build.binary.display())
        }
        Some(_) => {}
        None => eprintln!(
            "note: {} was not run (install qemu-user to have its --version checked under emulation)",
            build.binary.display()
        ),
    }
    Ok(())
}

/// The version another platform's binary reports when run under qemu's user-mode
/// emulation with Debian's cross libraries, or `None` when qemu is not installed.
fn emulated_version(build: &Build) -> Result<Option<String>> {
    let (qemu, sysroot) = match build.platform.name {
        "linux_arm64" => ("qemu-aarch64", "/usr/aarch64-linux-gnu"),
        _ => return Ok(None),
    };
    if Command::new(qemu).arg("--version").output().is_err() || !Path::new(sysroot).is_dir() {
        return Ok(None);
    }
    let out = Command::new(qemu)
        .args(["-L", sysroot])
        .arg(&build.binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} under {qemu}", build.binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().strip_prefix(BINARY).map(str::trim) {
        Some(version) if out.status.success() && !version.is_empty() => Ok(Some(version.to_string())),
        _ => bail!("{} --version under {qemu} printed {:?}", build.binary.display(), text.trim()),
    }
}

/// The version a provider binary reports with `--version`.
pub fn reported_version(binary: &Path) -> Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().strip_prefix(BINARY).map(str::trim) {
        Some(version) if out.status.success() && !version.is_empty() => Ok(version.to_string()),
        _ => bail!("{} --version printed {:?}", binary.display(), text.trim()),
    }
}

/// A zip holding `binary` as the one executable `entry`, the same bytes for the same
/// binary: a fixed time stamp, no extra fields.
fn write_zip(binary: &Path, entry: &str, path: &Path) -> Result<()> {
    use zip::write::SimpleFileOptions;
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755)
        .large_file(false);
    zip.start_file(entry, options).with_context(|| format!("writing {}", path.display()))?;
    let mut input = std::fs::File::open(binary).with_context(|| format!("reading {}", binary.display()))?;
    std::io::copy(&mut input, &mut zip).with_context(|| format!("writing {}", path.display()))?;
    zip.finish()
        .with_context(|| format!("writing {}", path.display()))?
        .flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const INSTALL_USAGE: &str = "\
cargo xtask install [--debug] [--plugins-dir <dir>]

Builds the provider (release profile, or debug with --debug) and installs it into
Terraform's implicit filesystem mirror, ~/.terraform.d/plugins unless --plugins-dir
says otherwise, as terraform.local/immutable/immutable <version> for this platform.
";

/// `cargo xtask install`.
pub fn install(args: &[String]) -> Result<()> {
    let mut profile = crate::Profile::Release;
    let mut plugins = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--debug" => profile = crate::Profile::Debug,
            "--plugins-dir" => {
                plugins = Some(PathBuf::from(rest.next().context("--plugins-dir needs a folder")?))
            }
            "-h" | "--help" => {
                print!("{INSTALL_USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{INSTALL_USAGE}"),
        }
    }
    let plugins = match plugins {
        Some(dir) => dir,
        None => {
            let home = std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .context("HOME is not set: say where Terraform's plugins folder is with --plugins-dir")?;
            PathBuf::from(home).join(".terraform.d").join("plugins")
        }
    };
    let binary = crate::build_provider(profile)?;
    let before = Platform::host()
        .map(|p| {
            plugins
                .join(provider::SOURCE_ADDRESS)
                .join(VERSION)
                .join(p.name)
                .join(format!("{BINARY}_v{VERSION}"))
        })
        .and_then(|path| sha256_file(&path).ok());
    let installed = install_binary(&binary, VERSION, &plugins)?;
    println!("installed {} {VERSION} as {}", provider::SOURCE_ADDRESS, installed.display());
    if before.is_some_and(|old| sha256_file(&installed).is_ok_and(|new| new != old)) {
        println!(
            "note: this replaced another build of {VERSION}. Terraform refuses it in a configuration whose \
             .terraform.lock.hcl recorded the other one (a checksum mismatch, even with -upgrade): delete the \
             provider's block from that file and run terraform init again."
        );
    }
    println!(
        "use it with\n  terraform {{\n    required_providers {{\n      {TYPE} = {{\n        source  = \"{}\"\n        \
         version = \"{VERSION}\"\n      }}\n    }}\n  }}\n\
         Terraform looks there unless a CLI configuration's provider_installation block says otherwise.",
        provider::SOURCE_ADDRESS
    );
    Ok(())
}

/// Copies `binary` into `plugins` in Terraform's unpacked layout
/// (`<host>/<namespace>/<type>/<version>/<os_arch>/terraform-provider-<type>_v<version>`)
/// and returns its path. The copy is renamed into place, so a Terraform starting the
/// provider meanwhile sees the old binary or the new one, never half of one.
pub fn install_binary(binary: &Path, version: &str, plugins: &Path) -> Result<PathBuf> {
    let platform = Platform::host().context("this platform is not one the provider is released for")?;
    let reported = reported_version(binary)?;
    if reported != version {
        bail!("{} reports version {reported}, expected {version}", binary.display());
    }
    let dir = plugins.join(provider::SOURCE_ADDRESS).join(version).join(platform.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join(format!("{BINARY}_v{version}"));
    let partial = dir.join(format!(".{BINARY}.{}", std::process::id()));
    std::fs::copy(binary, &partial)
        .with_context(|| format!("copying {} to {}", binary.display(), dir.display()))?;
    std::fs::rename(&partial, &target).with_context(|| format!("installing {}", target.display()))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::tests::{LocalAws, Workdir, provider_binary, seed_example_lineage};

    fn lineage_example(workdir: &Workdir) {
        let account = workdir.account().clone();
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async { seed_example_lineage(&account.ec2().await, &"d".repeat(40)).await });
        let example = crate::repo_root().join("examples/terraform/lineage/main.tf");
        let text = std::fs::read_to_string(&example).expect("the lineage example");
        workdir.write("main.tf", &text);
        // No provider_installation block: Terraform's defaults, as a user has them.
        std::fs::write(workdir.cli_config(), "disable_checkpoint = true\n").expect("writing the CLI config");
    }

    fn assert_installed_and_plans(workdir: &Workdir, init: &[&str], env: &[(&str, &str)]) {
        let out = workdir.terraform_with_env(init, env);
        assert!(out.success(), "terraform init failed\n{out}");
        let version = workdir.terraform_with_env(&["version", "-no-color"], env);
        let listed = format!("provider {} v{VERSION}", provider::SOURCE_ADDRESS);
        assert!(version.stdout.contains(&listed), "`terraform version` does not list {listed:?}\n{version}");
        let plan = workdir.terraform_with_env(&["plan", "-no-color", "-input=false"], env);
        assert!(plan.success(), "terraform plan failed\n{plan}");
        assert!(
            plan.stdout.contains("lineage") && plan.stdout.contains("demo-web-app: ami-"),
            "the plan does not show the lineage it read\n{plan}"
        );
    }

    #[test]
    fn the_binary_reports_the_crates_version() {
        assert_eq!(reported_version(&provider_binary()).expect("a version"), VERSION);
        assert_ne!(VERSION, "0.0.0", "the provider has a version of its own in provider/Cargo.toml");
    }

    #[test]
    fn a_packed_release_verifies_and_installs_with_plugin_dir() {
        let host = Platform::host().expect("a platform releases are built for");
        let binary = provider_binary();
        let dist = tempfile::tempdir().expect("a temporary folder");
        let release = pack(&[Build { platform: host, binary: binary.clone() }], VERSION, dist.path())
            .expect("packing the release");

        // The files a registry serves, under its names.
        let zip_file = format!("terraform-provider-immutable_{VERSION}_{}.zip", host.name);
        assert_eq!(release.zips, std::slice::from_ref(&zip_file));
        assert_eq!(release.sums, format!("terraform-provider-immutable_{VERSION}_SHA256SUMS"));
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dist.path().join(&release.manifest)).expect("manifest"),
        )
        .expect("the manifest is JSON");
        assert_eq!(manifest["metadata"]["protocol_versions"], serde_json::json!(["6.0"]));

        // SHA256SUMS verifies with the standard tool, one line per file.
        let check = Command::new("sha256sum")
            .args(["-c", &release.sums])
            .current_dir(dist.path())
            .output()
            .expect("running sha256sum");
        let said = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "sha256sum -c failed: {said}{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let mut ok: Vec<_> = said.lines().collect();
        ok.sort();
        assert_eq!(ok, [format!("{zip_file}: OK"), format!("{}: OK", release.manifest)]);

        // The zip holds the binary alone, executable, byte for byte.
        let mut archive =
            zip::ZipArchive::new(std::fs::File::open(dist.path().join(&zip_file)).expect("the zip"))
                .expect("a zip");
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).expect("the entry");
        assert_eq!(entry.name().expect("a name"), format!("terraform-provider-immutable_v{VERSION}"));
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut packed = Vec::new();
        entry.read_to_end(&mut packed).expect("unpacking");
        assert!(
            packed == std::fs::read(&binary).expect("the binary"),
            "the zip's binary differs from the build"
        );
        drop(entry);

        // Packing again gives the same bytes.
        let again = tempfile::tempdir().expect("a temporary folder");
        pack(&[Build { platform: host, binary: binary.clone() }], VERSION, again.path())
            .expect("packing again");
        let sums = |dir: &Path| std::fs::read_to_string(dir.join(&release.sums)).expect("SHA256SUMS");
        assert_eq!(sums(dist.path()), sums(again.path()), "packing is not reproducible");
        // Into a folder an earlier release wrote: only this release's files are left.
        let other = PLATFORMS.into_iter().find(|p| *p != host).expect("another platform");
        std::fs::write(again.path().join(zip_name(VERSION, &other)), "stale").expect("a stale zip");
        let again_mirror = again.path().join("mirror").join(provider::SOURCE_ADDRESS);
        std::fs::write(again_mirror.join(zip_name(VERSION, &other)), "stale").expect("a stale mirror zip");
        pack(&[Build { platform: host, binary: binary.clone() }], VERSION, again.path())
            .expect("packing over");
        let mut left: Vec<String> = std::fs::read_dir(again.path())
            .expect("the folder")
            .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected =
            vec![zip_file.clone(), release.manifest.clone(), release.sums.clone(), "mirror".to_owned()];
        expected.sort();
        assert_eq!(left, expected);
        let mirrored: Vec<String> = std::fs::read_dir(&again_mirror)
            .expect("the mirror")
            .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(mirrored, std::slice::from_ref(&zip_file));

        // Terraform installs it from the packed layout and plans the lineage example.
        let workdir = Workdir::new(&LocalAws::shared().account());
        lineage_example(&workdir);
        let plugin_dir = format!("-plugin-dir={}", release.mirror.display());
        assert_installed_and_plans(&workdir, &["init", "-no-color", "-input=false", &plugin_dir], &[]);
        let lock =
            std::fs::read_to_string(workdir.path().join(".terraform.lock.hcl")).expect("the lock file");
        assert!(lock.contains(&format!("version = \"{VERSION}\"")), "lock file:\n{lock}");
    }

    #[test]
    fn install_puts_the_provider_where_terraform_looks_by_default() {
        let home = tempfile::tempdir().expect("a temporary home");
        let plugins = home.path().join(".terraform.d/plugins");
        let installed = install_binary(&provider_binary(), VERSION, &plugins).expect("installing");
        assert_eq!(
            installed,
            plugins
                .join("terraform.local/immutable/immutable")
                .join(VERSION)
                .join(Platform::host().expect("a platform").name)
                .join(format!("terraform-provider-immutable_v{VERSION}"))
        );
        let workdir = Workdir::new(&LocalAws::shared().account());
        lineage_example(&workdir);
        let home = home.path().to_string_lossy().into_owned();
        assert_installed_and_plans(&workdir, &["init", "-no-color", "-input=false"], &[("HOME", &home)]);
        // Installing again over it (a rebuild) leaves one binary there, no partial copy.
        install_binary(&provider_binary(), VERSION, &plugins).expect("installing again");
        let dir = installed.parent().expect("its folder");
        let files: Vec<_> =
            std::fs::read_dir(dir).expect("the folder").map(|e| e.expect("an entry").file_name()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
    }
}
