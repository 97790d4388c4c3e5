#![allow(clippy::unwrap_used, clippy::expect_used)]
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let kind = a[1].clone();
    let n: usize = a[2].parse().unwrap();
    let kb: usize = a[3].parse().unwrap();
    let src = match kind.as_str() {
        "cmd" => format!("echo {}x{}", "$(".repeat(n), ")".repeat(n)),
        "param" => format!("echo {}x{}", "${a:-".repeat(n), "}".repeat(n)),
        "dq" => format!("echo {}x{}", "\"$(".repeat(n), ")\"".repeat(n)),
        "arith" => format!("echo {}x{}", "$((".repeat(n), "))".repeat(n)),
        "wordcmd" => format!("{}x{}", "$( (".repeat(n), ") )".repeat(n)),
        "wordparen" => format!("$({}x{})", "(".repeat(n), ")".repeat(n)),
        "wordparam" => format!("{}x{}", "${a:-".repeat(n), "}".repeat(n)),
        "wordarith" => format!("$(({}x{}))", "(".repeat(n), ")".repeat(n)),
        "worddq" => format!("{}x{}", "\"$(echo ".repeat(n), ")\"".repeat(n)),
        _ => panic!(),
    };
    let h = std::thread::Builder::new()
        .stack_size(kb * 1024)
        .spawn(move || {
            let opts = brush_parser::ParserOptions {
                enable_extended_globbing: false,
                ..Default::default()
            };
            if kind.starts_with("word") {
                brush_parser::word::parse(&src, &opts).is_ok()
            } else {
                brush_parser::uncached_tokenize_str(&src, &opts.tokenizer_options()).is_ok()
            }
        })
        .unwrap();
    println!("{} n={n} {kb}KB ok={}", a[1], h.join().unwrap());
}
