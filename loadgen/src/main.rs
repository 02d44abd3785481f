//! The `vmstorm` command: parse the command line, run it, print one error line on failure.

#![forbid(unsafe_code)]

use clap::error::ErrorKind;
use clap::Parser;
use vmstorm_loadgen::cli::{check_outputs, one_line, Cli};
use vmstorm_loadgen::commands::execute;
use vmstorm_loadgen::trace::clip_words;

/// Prints one error line (clipped: a huge bad token is not echoed whole) and exits.
fn fail(message: &str, code: i32) -> ! {
    eprintln!("vmstorm: error: {}", clip_words(message));
    std::process::exit(code);
}

/// A closed pipe on stdout (`vmstorm import ... | head -1`) ends the program quietly, as
/// it ends any Unix filter, instead of printing a panic about a failed write.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() {
    quiet_on_closed_pipe();
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
