//! The `vmstorm` command: parse the command line, run it, print one error line on failure.

use clap::error::ErrorKind;
use clap::Parser;
use vmstorm_loadgen::cli::{check_outputs, one_line, Cli};
use vmstorm_loadgen::commands::execute;
use vmstorm_loadgen::trace::{clip, MAX_ERROR_CHARS};

/// Prints one error line (clipped: a huge bad token is not echoed whole) and exits.
fn fail(message: &str, code: i32) -> ! {
    let words: Vec<String> = message.split([' ', '\n']).map(|w| clip(w, 64)).collect();
    eprintln!("vmstorm: error: {}", clip(&words.join(" "), MAX_ERROR_CHARS * 2));
    std::process::exit(code);
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                std::process::exit(0);
            }
            // clap's message is several lines (usage, tips): keep what says what is wrong.
            _ => fail(&format!("{} (see vmstorm --help)", one_line(&e.to_string())), 2),
        },
    };
    // Outputs are checked before any work, so a bad path does not cost a whole run.
    if let Err(e) = check_outputs(&cli) {
        fail(&e, 1);
    }
    if let Err(e) = execute(cli) {
        fail(&e.to_string(), 1);
    }
}
