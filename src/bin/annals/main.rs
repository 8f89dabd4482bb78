//! The `annals` command-line tool (placeholder until the CLI lands).

fn main() {
    eprintln!("annals: the command-line tool is not built yet; see README.md");
    std::process::exit(2);
}
