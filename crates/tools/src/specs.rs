//! The tools as the model sees them: names, descriptions and JSON schemas. The names and
//! arguments are a public contract (DESIGN.md).

use llm::ToolSpec;
use serde_json::json;

use crate::list::LIST_MAX_ENTRIES;
use crate::read::{READ_DEFAULT_LIMIT, READ_MAX_LINE_CHARS};
use crate::search::GREP_MAX_MATCHES;

/// `bash`.
pub(crate) fn bash(default_timeout_secs: u64, max_timeout_secs: u64) -> ToolSpec {
    ToolSpec {
        name: "bash".into(),
        description: format!(
            "Run a shell command in the project directory (bash -c) and get its exit code, \
             stdout and stderr. Use it to run tests, builds, git, package managers and small \
             scripts. Commands are checked against an allowlist and run in a sandbox: \
             writes only inside the project and a temp dir, no network unless enabled, no \
             interactive input. Each call is a fresh shell (cd and exported variables do not \
             carry over; chain with &&). Long output is cut in the middle. Default timeout \
             {default_timeout_secs} s, at most {max_timeout_secs} s; the whole process group \
             is killed on timeout, so do not start servers that never exit (run them in the \
             background inside the same command if you must, and stop them). Prefer \
             read_file, edit_file, list_files and grep over cat, sed, ls and grep here."
        ),
        input_schema: json!({
            "type": "object",
            "properties": {
                "command": {
                    "type": "string",
                    "description": "The command line, e.g. `pytest -q tests/test_api.py`."
                },
                "timeout_secs": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": max_timeout_secs,
                    "description": format!(
                        "Seconds before the command is killed (default \
                         {default_timeout_secs}, at most {max_timeout_secs})."
                    )
                }
            },
            "required": ["command"],
            "additionalProperties": false
        }),
    }
}

/// `read_file`.
pub(crate) fn read_file() -> ToolSpec {
    ToolSpec {
        name: "read_file".into(),
        description: format!(
            "Read a text file of the project. Lines come numbered like `cat -n` (the number, \
             a tab, then the line); the numbers are not part of the file. Shows at most \
             {READ_DEFAULT_LIMIT} lines from `offset` (a 1-based line number); a note at the \
             end says how many lines remain and which offset continues. Lines longer than \
             {READ_MAX_LINE_CHARS} characters are cut. Binary files are refused. Read a file \
             before editing it."
        ),
        input_schema: json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "File path, relative to the project root (or absolute inside it)."
                },
                "offset": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "First line to show, 1-based (default 1)."
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": format!("How many lines to show (default {READ_DEFAULT_LIMIT}).")
                }
            },
            "required": ["path"],
            "additionalProperties": false
        }),
    }
}

/// `write_file`.
pub(crate) fn write_file() -> ToolSpec {
    ToolSpec {
        name: "write_file".into(),
        description: "Create a file or replace its whole content. Parent directories are \
                      created. The write is atomic. Prefer edit_file to change part of an \
                      existing file. Files managed by the harness and frozen feature checks \
                      cannot be written."
            .into(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "File path, relative to the project root (or absolute inside it)."
                },
                "content": {
                    "type": "string",
                    "description": "The complete new content of the file."
                }
            },
            "required": ["path", "content"],
            "additionalProperties": false
        }),
    }
}

/// `edit_file`.
pub(crate) fn edit_file() -> ToolSpec {
    ToolSpec {
        name: "edit_file".into(),
        description: "Replace an exact piece of text in a file. `old_string` must match the \
                      file exactly, including whitespace and indentation (copy it from \
                      read_file output without the line-number prefix), and must occur \
                      exactly once unless `replace_all` is true; include a few surrounding \
                      lines to make it unique. The write is atomic. Frozen feature checks \
                      cannot be edited."
            .into(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "File path, relative to the project root (or absolute inside it)."
                },
                "old_string": {
                    "type": "string",
                    "description": "The exact text to replace (not empty)."
                },
                "new_string": {
                    "type": "string",
                    "description": "The text to put in its place (different from old_string; may be empty to delete)."
                },
                "replace_all": {
                    "type": "boolean",
                    "description": "Replace every occurrence instead of exactly one (default false)."
                }
            },
            "required": ["path", "old_string", "new_string"],
            "additionalProperties": false
        }),
    }
}

/// `list_files`.
pub(crate) fn list_files() -> ToolSpec {
    ToolSpec {
        name: "list_files".into(),
        description: format!(
            "List the files and directories under a directory of the project, recursively \
             and sorted; directories end with `/`. Files ignored by .gitignore and the .git \
             directory are left out. At most {LIST_MAX_ENTRIES} entries; narrow with `path` \
             or `pattern` when cut."
        ),
        input_schema: json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "Directory to list, relative to the project root (default: the root)."
                },
                "pattern": {
                    "type": "string",
                    "description": "Glob the paths must match, e.g. `*.py`, `src/**/*.rs`, `tests/test_*.py`; matched against the path from the project root, from `path`, and the file name."
                }
            },
            "additionalProperties": false
        }),
    }
}

/// `grep`.
pub(crate) fn grep() -> ToolSpec {
    ToolSpec {
        name: "grep".into(),
        description: format!(
            "Search file contents with a regular expression (Rust regex syntax, e.g. \
             `fn \\w+_test`, `(?i)todo`). Prints `path:line:text` for each matching line. \
             Respects .gitignore, skips binary files and .git. At most {GREP_MAX_MATCHES} \
             matching lines; narrow with `path` or `glob` when cut."
        ),
        input_schema: json!({
            "type": "object",
            "properties": {
                "pattern": {
                    "type": "string",
                    "description": "Regular expression to search for (one line at a time)."
                },
                "path": {
                    "type": "string",
                    "description": "File or directory to search, relative to the project root (default: the root)."
                },
                "glob": {
                    "type": "string",
                    "description": "Only search files whose path matches this glob, e.g. `*.py` or `src/**/*.ts`."
                }
            },
            "required": ["pattern"],
            "additionalProperties": false
        }),
    }
}
