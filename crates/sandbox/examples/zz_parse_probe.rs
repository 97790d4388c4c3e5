#![allow(clippy::unwrap_used, clippy::expect_used)]
fn gen(kind: &str, n: usize) -> String {
    match kind {
        "brace" => format!("{}true{}", "{ ".repeat(n), "; }".repeat(n)),
        "sub" => format!("{}true{}", "( ".repeat(n), " )".repeat(n)),
        "cmdsub" => format!("echo {}x{}", "$( ".repeat(n), " )".repeat(n)),
        "dqcmdsub" => format!("echo {}x{}", "\"$(echo ".repeat(n), ")\"".repeat(n)),
        "paren" => format!("{}true{}", "(".repeat(n), ")".repeat(n)),
        "arith" => format!("(( {}1{} ))", "(".repeat(n), ")".repeat(n)),
        "arithx" => format!("echo $(( {}1{} ))", "(".repeat(n), ")".repeat(n)),
        "if" => format!("{}true{}", "if true; then ".repeat(n), "; fi".repeat(n)),
        "while" => format!("{}true{}", "while true; do ".repeat(n), "; done".repeat(n)),
        "pipe" => format!("true{}", " | true".repeat(n)),
        "and" => format!("true{}", " && true".repeat(n)),
        "seq" => format!("true{}", "; true".repeat(n)),
        "param" => format!("echo {}x{}", "${a:-".repeat(n), "}".repeat(n)),
        "dbl" => format!("[[ {}a{} ]]", "( ".repeat(n), " )".repeat(n)),
        "not" => format!("[[ {}a ]]", "! ".repeat(n)),
        "heredocs" => format!("cat {}\n{}", "<<E ".repeat(n), "E\n".repeat(n)),
        "args" => format!("echo{}", " a".repeat(n)),
        "func" => format!("{}true{}", "f() { ".repeat(n), "; }".repeat(n)),
        "case" => format!("{}true{}", "case x in x) ".repeat(n), ";; esac".repeat(n)),
        "bq" => {
            let mut s = String::from("x");
            for _ in 0..n {
                s = format!("`echo {}`", s.replace('\\', "\\\\").replace('`', "\\`"));
            }
            format!("echo {s}")
        }
        "dbland" => format!("[[ a{} ]]", " && a".repeat(n)),
        "dblor" => format!("[[ a{} ]]", " || a".repeat(n)),
        "elif" => format!(
            "if true; then true; {}fi",
            "elif true; then true; ".repeat(n)
        ),
        "bang" => format!("{}true", "! ".repeat(n)),
        "redirs" => format!("echo{}", " >a".repeat(n)),
        "assign" => format!("{}true", "a=1 ".repeat(n)),
        "caseitems" => format!("case x in {}esac", "a) true;; ".repeat(n)),
        "time" => format!("{}true", "time ".repeat(n)),
        "coproc" => format!("{}true", "coproc ".repeat(n)),
        _ => panic!("kind"),
    }
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let kind = a[1].clone();
    let n: usize = a[2].parse().unwrap();
    let kb: usize = a[3].parse().unwrap();
    let src = gen(&kind, n);
    let t = std::time::Instant::now();
    let h = std::thread::Builder::new()
        .stack_size(kb * 1024)
        .spawn(move || {
            let opts = brush_parser::ParserOptions {
                enable_extended_globbing: false,
                ..Default::default()
            };
            let mut p = brush_parser::Parser::new(std::io::Cursor::new(src.as_bytes()), &opts);
            let r = p.parse_program();
            let ok = r.is_ok();
            drop(r);
            (ok, src.len())
        })
        .unwrap();
    let (ok, len) = h.join().unwrap();
    println!(
        "{kind} n={n} len={len} stack={kb}KB ok={ok} {:?}",
        t.elapsed()
    );
}
