//! Reading a program's options the way the program does. GNU tools (getopt_long), git's
//! subcommands (parse-options), curl and npm accept any unambiguous prefix of a long option
//! (`git rebase --exe`, `sed --in-pl`), so every long option rule matches prefixes.

use super::super::words::Arg;

/// What a program's option syntax looks like.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spec {
    /// Short options that take a value, attached (`-oFILE`) or next (`-o FILE`).
    pub(crate) short_values: &'static str,
    /// Short options whose value may only be attached (`sed -i.bak`, `gawk -dFILE`).
    pub(crate) short_optional: &'static str,
    /// Long options that take a value (`--output FILE`, `--output=FILE`), full names.
    pub(crate) long_values: &'static [&'static str],
    /// Long options whose value may only be attached (`--backup=numbered`).
    pub(crate) long_optional: &'static [&'static str],
    /// Long options without a value, full names (so abbreviations resolve as the program does).
    pub(crate) long_flags: &'static [&'static str],
    /// Options may follow operands (GNU argument permutation). Without it the first operand
    /// ends the options.
    pub(crate) permute: bool,
    /// Long options start with a single dash (`find -files0-from`, `-exec`): no bundling.
    pub(crate) single_dash_long: bool,
}

/// One option's value: attached text, or the next argument.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Attached,
    Next(&'a Arg),
}

impl<'a> Value<'a> {
    /// The value as an argument (attached values become fixed arguments).
    pub(crate) fn arg(&self, whole: &'a Arg, cut: usize) -> Arg {
        match self {
            Value::Next(a) => (*a).clone(),
            Value::Attached => sliced(whole, cut),
        }
    }
}

/// One item of a command line.
#[derive(Debug, Clone)]
pub(crate) enum Item<'a> {
    /// `-x` (one letter of a bundle), with its value when it takes one.
    Short {
        letter: char,
        value: Option<Value<'a>>,
        /// The argument it came from, and where its attached value starts in its text.
        source: &'a Arg,
        cut: usize,
    },
    /// `--name`: `name` is the full option when the given text resolves to exactly one known
    /// option, else the text as given.
    Long {
        name: String,
        given: String,
        value: Option<Value<'a>>,
        source: &'a Arg,
        cut: usize,
    },
    /// An operand.
    Operand(&'a Arg),
}

impl Item<'_> {
    /// The option's value as an argument of its own (`-oFILE` → `FILE`).
    pub(crate) fn value_arg(&self) -> Option<Arg> {
        match self {
            Item::Short {
                value: Some(v),
                source,
                cut,
                ..
            }
            | Item::Long {
                value: Some(v),
                source,
                cut,
                ..
            } => Some(v.arg(source, *cut)),
            _ => None,
        }
    }

    /// Whether this is the long option `full` (possibly abbreviated) or the short `letter`.
    pub(crate) fn is(&self, letter: Option<char>, full: Option<&str>) -> bool {
        match self {
            Item::Short { letter: l, .. } => letter == Some(*l),
            Item::Long { name, given, .. } => {
                full.is_some_and(|f| name == f || abbreviates(given, f))
            }
            Item::Operand(_) => false,
        }
    }
}

/// Whether an option typed as `given` (without dashes and `=value`) may be taken for `full`:
/// it is a non-empty prefix of it.
pub(crate) fn abbreviates(given: &str, full: &str) -> bool {
    !given.is_empty() && full.starts_with(given)
}

/// An argument made of the text after byte `cut` of `whole`'s option text (an attached option
/// value). Its value is known only as far as `whole`'s is.
fn sliced(whole: &Arg, cut: usize) -> Arg {
    let text = whole.option_text();
    let skip = text.get(..cut).map_or(0, |s| s.chars().count());
    let tail = text.get(cut..).unwrap_or("").to_string();
    Arg {
        raw: if whole.literal.is_some() {
            tail.clone()
        } else {
            whole.raw.clone()
        },
        literal: whole.literal.as_ref().map(|_| tail.clone()),
        glob: whole.glob,
        value: whole
            .value
            .as_ref()
            .map(|v| v.iter().skip(skip).copied().collect()),
        prefix: tail,
    }
}

/// Splits `args` into options and operands according to `spec`. Arguments whose value is
/// unknown are operands unless their fixed beginning makes them an option (`--output=$F`).
pub(crate) fn parse<'a>(args: &'a [Arg], spec: &Spec) -> Vec<Item<'a>> {
    let mut items = Vec::new();
    let mut i = 0;
    let mut only_operands = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        let text = arg.option_text();
        if only_operands || !text.starts_with('-') || text == "-" {
            items.push(Item::Operand(arg));
            if !spec.permute {
                only_operands = true;
            }
            continue;
        }
        if text == "--" {
            only_operands = true;
            continue;
        }
        let long_body = if spec.single_dash_long {
            text.strip_prefix("--").or_else(|| text.strip_prefix('-'))
        } else {
            text.strip_prefix("--")
        };
        if let Some(body) = long_body {
            let (given, attached) = match body.split_once('=') {
                Some((g, v)) => (g, Some(v)),
                None => (body, None),
            };
            let name = resolve(given, spec);
            let cut = text.len() - attached.map_or(0, str::len);
            // An ambiguous abbreviation of options that all take a value is taken to take one.
            let ambiguous_value = name == given
                && spec.long_values.iter().any(|v| abbreviates(given, v))
                && !spec
                    .long_flags
                    .iter()
                    .chain(spec.long_optional)
                    .any(|f| abbreviates(given, f));
            let value = if attached.is_some() {
                Some(Value::Attached)
            } else if spec.long_values.contains(&name.as_str()) || ambiguous_value {
                let next = args.get(i).map(Value::Next);
                i += 1;
                next
            } else {
                None
            };
            items.push(Item::Long {
                name,
                given: given.to_string(),
                value,
                source: arg,
                cut,
            });
            continue;
        }
        // A bundle of short options: `-xvf FILE`, `-oFILE`.
        let letters: Vec<(usize, char)> = text.char_indices().skip(1).collect();
        for (at, letter) in &letters {
            let rest_at = at + letter.len_utf8();
            let rest = &text[rest_at..];
            if spec.short_values.contains(*letter) {
                let value = if rest.is_empty() {
                    let next = args.get(i).map(Value::Next);
                    i += 1;
                    next
                } else {
                    Some(Value::Attached)
                };
                items.push(Item::Short {
                    letter: *letter,
                    value,
                    source: arg,
                    cut: rest_at,
                });
                break;
            }
            if spec.short_optional.contains(*letter) {
                items.push(Item::Short {
                    letter: *letter,
                    value: (!rest.is_empty()).then_some(Value::Attached),
                    source: arg,
                    cut: rest_at,
                });
                break;
            }
            items.push(Item::Short {
                letter: *letter,
                value: None,
                source: arg,
                cut: rest_at,
            });
        }
    }
    items
}

/// The full name `given` stands for: an exact match, else the one option it abbreviates, else
/// itself.
fn resolve(given: &str, spec: &Spec) -> String {
    let all = spec
        .long_values
        .iter()
        .chain(spec.long_optional)
        .chain(spec.long_flags);
    let mut candidates = Vec::new();
    for full in all {
        if *full == given {
            return given.to_string();
        }
        if abbreviates(given, full) {
            candidates.push(*full);
        }
    }
    match candidates.as_slice() {
        [one] => (*one).to_string(),
        _ => given.to_string(),
    }
}

/// The operands among `items`.
pub(crate) fn operands<'a>(items: &[Item<'a>]) -> Vec<&'a Arg> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Operand(a) => Some(*a),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<Arg> {
        list.iter().map(|s| Arg::fixed(s)).collect()
    }

    #[test]
    fn short_bundles_and_values() {
        let spec = Spec {
            short_values: "to",
            permute: true,
            ..Spec::default()
        };
        let a = args(&["-rf", "-tDIR", "x", "-o", "out", "--", "-y"]);
        let items = parse(&a, &spec);
        let shorts: Vec<(char, Option<String>)> = items
            .iter()
            .filter_map(|i| match i {
                Item::Short { letter, .. } => Some((
                    *letter,
                    i.value_arg().and_then(|a| a.plain().map(str::to_string)),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            shorts,
            [
                ('r', None),
                ('f', None),
                ('t', Some("DIR".to_string())),
                ('o', Some("out".to_string()))
            ]
        );
        let ops: Vec<&str> = operands(&items).iter().filter_map(|a| a.plain()).collect();
        assert_eq!(ops, ["x", "-y"]);
        assert_eq!(items[2].value_arg().unwrap().plain(), Some("DIR"));
    }

    #[test]
    fn long_options_resolve_abbreviations() {
        let spec = Spec {
            long_values: &["target-directory", "suffix"],
            long_flags: &["force", "follow"],
            permute: true,
            ..Spec::default()
        };
        let a = args(&["--target=/etc", "--fo", "--suf", "~", "x"]);
        let items = parse(&a, &spec);
        match &items[0] {
            Item::Long { name, .. } => {
                assert_eq!(name, "target-directory");
                assert_eq!(items[0].value_arg().unwrap().plain(), Some("/etc"));
            }
            other => panic!("{other:?}"),
        }
        // Ambiguous: kept as given.
        assert!(matches!(&items[1], Item::Long { name, .. } if name == "fo"));
        assert!(items[0].is(None, Some("target-directory")));
        assert!(matches!(&items[2], Item::Long { name, value: Some(_), .. } if name == "suffix"));
        assert_eq!(operands(&items).len(), 1);
    }
}
