//! The `vmstorm` command.

fn main() {
    println!("vmstorm: under construction");
}
