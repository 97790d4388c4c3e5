#![allow(clippy::unwrap_used, clippy::expect_used)]
fn main() {
    let src = std::env::args().nth(1).unwrap();
    let opts = brush_parser::ParserOptions {
        enable_extended_globbing: false,
        ..Default::default()
    };
    match brush_parser::uncached_tokenize_str(&src, &opts.tokenizer_options()) {
        Ok(toks) => {
            for t in toks {
                match t {
                    brush_parser::Token::Operator(s, _) => println!("OP {s:?}"),
                    brush_parser::Token::Word(s, _) => println!("W  {s:?}"),
                }
            }
        }
        Err(e) => println!("ERR {e}"),
    }
}
