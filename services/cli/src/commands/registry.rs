//! `liaison registry generate`: a national registry (`liaison_system::national`)
//! written to a file, with the private keys of one sample area's agencies
//! kept in a directory so that they can send.

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use liaison_system::national::{self, Options};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Write a national registry: per area a council, an NHS trust and
    /// schools; police forces serving three areas each; per region a
    /// counter-terrorism unit, probation and business partners; national
    /// sector leads. Every agency has an Ed25519 key of its own.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Local-authority areas (1 to 1000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    areas: u64,
    /// Schools in each area (0 to 1000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1000))]
    schools_per_area: u64,
    /// Regions the areas fall into (each with a CT unit, probation and partners).
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u64).range(1..=100))]
    regions: u64,
    /// Where to write the registry (refused if it exists, unless --force).
    #[arg(long)]
    out: PathBuf,
    /// Where to keep the private keys of area 1's agencies, its force and
    /// CT unit and region 1's partners (mode 0600; refused if it holds keys).
    #[arg(long)]
    keys_dir: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(command: &RegistryCommand) -> Result<ExitCode> {
    let RegistryCommand::Generate(args) = command;
    if args.out.exists() && !args.force {
        bail!(
            "{} exists: give --force to replace it, or another --out",
            args.out.display()
        );
    }
    let mut options = Options::new(args.areas as usize, args.schools_per_area as usize);
    options.regions = args.regions as usize;
    let keep = args.keys_dir.is_some();
    let generated = national::generate(&options, |id| keep && national::in_sample(id))?;
    if let Some(dir) = &args.keys_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let pems = generated
            .sample_keys
            .iter()
            .map(|(id, pem)| (dir.join(format!("{id}.pem")), pem));
        let nkeys = generated
            .sample_nkeys
            .iter()
            .map(|(id, seed)| (liaison_system::keys::nkey_path(dir, id), seed));
        for (path, pem) in pems.chain(nkeys) {
            if path.exists() {
                bail!("{} exists: keys are never overwritten", path.display());
            }
            liaison_core::session::write_private(&path, pem.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&args.out, &generated.toml)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "{} agencies in {} areas written to {}",
        generated.agencies,
        options.areas,
        args.out.display()
    );
    if let Some(dir) = &args.keys_dir {
        println!(
            "private keys and NKey seeds of {} agencies (area 1's and its region's) in {}",
            generated.sample_keys.len(),
            dir.display()
        );
    }
    println!(
        "use it: LIAISON_PATHS_REGISTRY={} liaison up",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
