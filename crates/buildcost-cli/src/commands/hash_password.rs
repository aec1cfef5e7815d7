//! `buildcost hash-password`: the bcrypt hash of a password, for `[http] basic_auth_users`.

use std::io::BufRead;

use anyhow::{bail, Context, Result};

/// `hash-password` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// bcrypt cost (4–31): each step doubles the work of checking a password.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
}

/// Reads one password line from standard input and prints its bcrypt hash. The password is
/// never echoed or logged.
///
/// # Errors
/// Standard input is empty or not UTF-8.
pub fn run(args: Args) -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password on standard input; try: printf '%s' \"$PASSWORD\" | buildcost hash-password");
    }
    println!("{}", bcrypt::hash(password, args.cost)?);
    Ok(())
}
