//! `liaison link token`: the pseudonymous subject token of a person, as the
//! agency's own systems compute it (`liaison_client::subject`), under the
//! partnership's subject key. Nothing is sent anywhere.

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use liaison_client::subject::{self, Identifiers, SubjectKey};
use liaison_system::keys::DEV_SUBJECT_KEY;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Print the subject token (`st1:…`) of a person's identifiers: a full
    /// name and date of birth, other identifiers (`--id nhs=…`), or both.
    /// Identifiers given on the command line stay in the shell's history:
    /// clear it, or let the agency's systems compute tokens with the client
    /// library.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The partnership's subject key (base64url, e.g. from `liaison keys
    /// gen-link`) [default: the development key, deploy/linkage/dev-partnership.key].
    #[arg(long)]
    key: Option<PathBuf>,
    /// Full name, "Given Family" or "Family, Given".
    #[arg(long)]
    name: Option<String>,
    /// Date of birth: YYYY-MM-DD, DD/MM/YYYY, "12 Apr 2010", ...
    #[arg(long)]
    dob: Option<String>,
    /// Another identifier, SCHEME=VALUE (nhs, nino, upn, pnc, or any scheme); repeatable.
    #[arg(long = "id", value_name = "SCHEME=VALUE")]
    ids: Vec<String>,
    /// Also print (to stderr) the identifiers as normalised, i.e. what was hashed.
    #[arg(long)]
    show_normalised: bool,
}

pub fn run(command: &LinkCommand) -> Result<ExitCode> {
    let LinkCommand::Token(args) = command;
    let path = args
        .key
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEV_SUBJECT_KEY));
    let key = SubjectKey::from_file(&path).with_context(|| {
        if args.key.is_none() {
            "no --key given and the development key is not here (run from the repository root)"
                .to_owned()
        } else {
            "give the partnership's subject key file with --key".to_owned()
        }
    })?;
    let mut other = Vec::with_capacity(args.ids.len());
    for id in &args.ids {
        let Some((scheme, value)) = id.split_once('=') else {
            bail!("--id must be SCHEME=VALUE, e.g. --id nhs=9434765919");
        };
        other.push((scheme.to_owned(), value.to_owned()));
    }
    let identifiers = Identifiers {
        full_name: args.name.clone().unwrap_or_default(),
        date_of_birth: args.dob.clone().unwrap_or_default(),
        other,
    };
    let normalised = subject::normalise(&identifiers)?;
    if args.show_normalised {
        if !normalised.full_name.is_empty() {
            eprintln!("name  {}", normalised.full_name);
            eprintln!("dob   {}", normalised.date_of_birth);
        }
        for (scheme, value) in &normalised.other {
            eprintln!("id    {scheme}={value}");
        }
    }
    println!("{}", subject::token_of(&key, &normalised));
    Ok(ExitCode::SUCCESS)
}
