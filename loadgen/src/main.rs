//! The `vmstorm` command: parse the command line, run it, print one error line on failure.

#![forbid(unsafe_code)]

use clap::error::ErrorKind;
use clap::Parser;
use vmstorm_loadgen::cli::Cli;
use vmstorm_loadgen::commands::execute;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                std::process::exit(0);
            }
            _ => {
                // clap's message is several lines (usage, tips): keep its first line.
                let text = e.to_string();
                let first = text.lines().next().unwrap_or("bad command line").trim_start_matches("error: ");
                eprintln!("vmstorm: error: {first} (see vmstorm --help)");
                std::process::exit(2);
            }
        },
    };
    if let Err(e) = execute(cli) {
        eprintln!("vmstorm: error: {e}");
        std::process::exit(1);
    }
}
