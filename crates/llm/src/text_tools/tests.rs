use super::*;
use crate::types::Usage;

fn tools() -> Vec<ToolSpec> {
    let spec = |name: &str, props: Value, required: &[&str]| ToolSpec {
        name: name.into(),
        description: format!("The {name} tool."),
        input_schema: json!({"type": "object", "properties": props, "required": required}),
    };
    vec![
        spec(
            "bash",
            json!({"command": {"type": "string"}, "timeout_secs": {"type": "integer"}}),
            &["command"],
        ),
        spec(
            "write_file",
            json!({"path": {"type": "string"}, "content": {"type": "string"}}),
            &["path", "content"],
        ),
        spec("list_files", json!({"path": {"type": "string"}}), &[]),
    ]
}

fn request(messages: Vec<Message>) -> Request {
    Request {
        model: "m".into(),
        system: "You are a test.".into(),
        messages,
        tools: tools(),
        max_tokens: 100,
        temperature: None,
    }
}

fn protocol() -> TextProtocol {
    TextProtocol::for_request(&request(vec![Message::user_text("go")]))
}

fn answer(text: &str) -> Response {
    Response {
        parts: vec![ContentPart::Text { text: text.into() }],
        stop_reason: StopReason::EndTurn,
        usage: Usage::default(),
        served_model: "m".into(),
        request_id: None,
        attempts: 1,
    }
}

/// The calls (name, input) and the kept text of an answer.
fn parse(text: &str) -> (Vec<(String, Value)>, String) {
    let r = protocol().parse_response(answer(text));
    let calls = r
        .tool_uses()
        .map(|(_, n, i)| (n.to_string(), i.clone()))
        .collect();
    (calls, r.text())
}

fn call(name: &str, input: Value) -> (String, Value) {
    (name.to_string(), input)
}

/// What a form is called, the answer, the calls it holds and the text around them.
type Form = (&'static str, String, Vec<(String, Value)>, &'static str);

/// Answers in every form a call may take, with the call they hold and the text around it.
fn forms() -> Vec<Form> {
    let ls = || call("bash", json!({"command": "ls"}));
    vec![
        (
            "fenced json",
            "I will list the files.\n```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n```\n".into(),
            vec![ls()],
            "I will list the files.",
        ),
        (
            "fenced tool_call",
            "```tool_call\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n```".into(),
            vec![ls()],
            "",
        ),
        (
            "fence without language",
            "Listing:\n```\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n```".into(),
            vec![ls()],
            "Listing:",
        ),
        (
            "hermes tool_call tag",
            "<tool_call>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n</tool_call>".into(),
            vec![ls()],
            "",
        ),
        (
            "tools tag",
            "Sure.\n<tools>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n</tools>".into(),
            vec![ls()],
            "Sure.",
        ),
        (
            "llama function tag",
            "<function=bash>{\"command\": \"ls\"}</function>".into(),
            vec![ls()],
            "",
        ),
        (
            "qwen3 parameter tags",
            "<tool_call>\n<function=write_file>\n<parameter=path>\na.py\n</parameter>\n<parameter=content>\nprint(1)\n</parameter>\n</function>\n</tool_call>".into(),
            vec![call("write_file", json!({"path": "a.py", "content": "print(1)"}))],
            "",
        ),
        (
            "typed parameter",
            "<function=bash><parameter=command>sleep 1</parameter><parameter=timeout_secs>30</parameter></function>".into(),
            vec![call("bash", json!({"command": "sleep 1", "timeout_secs": 30}))],
            "",
        ),
        (
            "python tag with parameters",
            "<|python_tag|>{\"name\": \"bash\", \"parameters\": {\"command\": \"ls\"}}".into(),
            vec![ls()],
            "",
        ),
        (
            "mistral marker",
            "[TOOL_CALLS][{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}]".into(),
            vec![ls()],
            "",
        ),
        (
            "bare json answer",
            "{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}".into(),
            vec![ls()],
            "",
        ),
        (
            "bare json after text",
            "First the files:\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\nThen more.".into(),
            vec![ls()],
            "First the files:\n\nThen more.",
        ),
        (
            "two fenced calls",
            "```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n```\nand\n```json\n{\"name\": \"list_files\", \"arguments\": {}}\n```".into(),
            vec![ls(), call("list_files", json!({}))],
            "and",
        ),
        (
            "array of calls",
            "```json\n[{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}, {\"name\": \"list_files\", \"arguments\": {\"path\": \".\"}}]\n```".into(),
            vec![ls(), call("list_files", json!({"path": "."}))],
            "",
        ),
        (
            "two objects in one block",
            "<tool_call>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n{\"name\": \"list_files\", \"arguments\": {}}\n</tool_call>".into(),
            vec![ls(), call("list_files", json!({}))],
            "",
        ),
        (
            "arguments as a string",
            "```json\n{\"name\": \"bash\", \"arguments\": \"{\\\"command\\\": \\\"ls\\\"}\"}\n```".into(),
            vec![ls()],
            "",
        ),
        (
            "tool and input aliases",
            "```json\n{\"tool\": \"bash\", \"input\": {\"command\": \"ls\"}}\n```".into(),
            vec![ls()],
            "",
        ),
        (
            "openai function object",
            "```json\n{\"type\": \"function\", \"function\": {\"name\": \"bash\", \"arguments\": \"{\\\"command\\\": \\\"ls\\\"}\"}}\n```".into(),
            vec![ls()],
            "",
        ),
        (
            "tool_calls list",
            "{\"tool_calls\": [{\"function\": {\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}}]}".into(),
            vec![ls()],
            "",
        ),
        (
            "flattened arguments",
            "```json\n{\"name\": \"bash\", \"command\": \"ls\"}\n```".into(),
            vec![ls()],
            "",
        ),
        (
            "raw newlines in a string",
            "```json\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"a.py\", \"content\": \"import os\nprint(os.getcwd())\n\"}}\n```".into(),
            vec![call("write_file", json!({"path": "a.py", "content": "import os\nprint(os.getcwd())\n"}))],
            "",
        ),
        (
            "single quotes and a trailing comma",
            "```json\n{'name': 'bash', 'arguments': {'command': 'ls',},}\n```".into(),
            vec![ls()],
            "",
        ),
        (
            "closing fence missing at the end",
            "Running it.\n```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}".into(),
            vec![ls()],
            "Running it.",
        ),
        (
            "closing tag missing at the end",
            "<tool_call>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n".into(),
            vec![ls()],
            "",
        ),
        (
            "fence inside a JSON string",
            "```json\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"R.md\", \"content\": \"```sh\\nls\\n```\\n\"}}\n```\ndone".into(),
            vec![call("write_file", json!({"path": "R.md", "content": "```sh\nls\n```\n"}))],
            "done",
        ),
        (
            "fence on the same line",
            "```json {\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}} ```".into(),
            vec![ls()],
            "",
        ),
        (
            "json block holding a tool_call tag",
            "```xml\n<tool_call>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n</tool_call>\n```".into(),
            vec![ls()],
            "",
        ),
        (
            "arguments alone, of the one tool they fit",
            "Call write_file with:\n```json\n{\"path\": \"a.py\", \"content\": \"x = 1\\n\"}\n```".into(),
            vec![call("write_file", json!({"path": "a.py", "content": "x = 1\n"}))],
            "Call write_file with:",
        ),
        (
            "unicode around the call",
            "Ça va — listing ✓\n```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"echo é\"}}\n```\nfini ✓".into(),
            vec![call("bash", json!({"command": "echo é"}))],
            "Ça va — listing ✓\n\nfini ✓",
        ),
    ]
}

#[test]
fn every_form_is_read() {
    for (what, text, want, kept) in forms() {
        let (calls, text_kept) = parse(&text);
        assert_eq!(calls, want, "{what}");
        assert_eq!(text_kept, kept, "{what}");
    }
}

#[test]
fn text_that_is_not_a_call_stays_text() {
    for text in [
        "Here is package.json:\n```json\n{\"name\": \"my-app\", \"version\": \"1.0.0\"}\n```\n",
        "```python\nprint('<tool_call>{\"name\": \"bash\"}</tool_call>')\n```",
        "The call looks like {\"name\": \"bash\", \"arguments\": {}} inline, in prose.",
        "A list:\n[1, 2, 3]\nand a map\n{\"a\": 1}\n",
        "Use `<tool_call>` tags, or ``` fences.",
        "All done: the tests pass.",
        "{ this is prose in braces, it's not JSON }",
        // Arguments that fit no tool.
        "```json\n{\"path\": \"a\", \"mode\": 1}\n```",
        // Bare arguments on a line are not taken for a call.
        "Run:\n{\"command\": \"ls\"}",
    ] {
        let (calls, kept) = parse(text);
        assert!(calls.is_empty(), "{text}: {calls:?}");
        assert_eq!(kept, text, "the text is kept exactly");
    }
}

#[test]
fn malformed_blocks_become_calls_the_tool_refuses() {
    let cases = [
        (
            "<tool_call>{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\" \"-la\"}}</tool_call>",
            "bash",
            "invalid JSON",
        ),
        (
            "```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}, oops}\n```",
            "bash",
            "invalid JSON",
        ),
        (
            "```tool_call\nbash ls -la\n```",
            UNREADABLE_CALL_NAME,
            "one JSON object",
        ),
        ("<tool_call>{\"cmd\": \"ls\"}</tool_call>", UNREADABLE_CALL_NAME, "no \"name\""),
        (
            "```json\n{\"name\": \"bash\", \"arguments\": [\"ls\"]}\n```",
            "bash",
            "must be a JSON object",
        ),
        (
            "{\"name\": \"write_file\", \"arguments\": {\"path\": \"a\", \"content\": \"x",
            "write_file",
            "EOF",
        ),
    ];
    for (text, name, problem) in cases {
        let p = protocol();
        let r = p.parse_response(answer(text));
        let uses: Vec<_> = r.tool_uses().collect();
        assert_eq!(uses.len(), 1, "{text}");
        let (id, got_name, input) = uses[0];
        assert_eq!(got_name, name, "{text}");
        assert_eq!(id, "text_call_1_0");
        let raw = invalid_raw(input).unwrap_or_else(|| panic!("{text}: {input}"));
        assert!(!raw.is_empty());
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        // The next request tells the model what was wrong.
        let next = request(vec![
            Message::user_text("go"),
            Message::assistant(r.parts.clone()),
            Message {
                role: Role::User,
                content: vec![ContentPart::ToolResult {
                    tool_use_id: id.to_string(),
                    content: "bash: the tool input was not valid JSON".into(),
                    is_error: true,
                }],
            },
        ]);
        let wire = p.wire_request(&next);
        let fed_back = wire.messages[2].content_text();
        assert!(
            fed_back.contains("could not read this tool call") && fed_back.contains(problem),
            "{text}: {fed_back}"
        );
        assert!(fed_back.contains("error=\"true\""), "{fed_back}");
    }
}

#[test]
fn ids_are_deterministic_per_turn_and_position() {
    let history = vec![
        Message::user_text("go"),
        Message::assistant(vec![ContentPart::Text { text: "a".into() }]),
        Message::user_text("more"),
    ];
    let p = TextProtocol::for_request(&request(history));
    let text = "```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n```\n<tool_call>{\"name\": \"list_files\", \"arguments\": {}}</tool_call>";
    let r = p.parse_response(answer(text));
    let ids: Vec<&str> = r.tool_uses().map(|(id, _, _)| id).collect();
    assert_eq!(ids, ["text_call_2_0", "text_call_2_1"]);
    assert_eq!(p.parse_response(answer(text)), r);
}

#[test]
fn cut_off_answers_keep_their_stop_reason() {
    let mut a = answer(
        "```json\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"a\", \"content\": \"xx",
    );
    a.stop_reason = StopReason::MaxTokens;
    let r = protocol().parse_response(a);
    assert_eq!(r.stop_reason, StopReason::MaxTokens);
    assert_eq!(
        r.tool_uses().count(),
        1,
        "the cut call is there to be answered"
    );
}

/// Feeds `pieces` through a filter: the text shown and the calls announced.
fn stream(pieces: &[&str]) -> (String, Vec<(String, String)>) {
    let mut filter = protocol().stream_filter();
    let mut shown = String::new();
    let mut started = Vec::new();
    let mut out = |e: StreamEvent| match e {
        StreamEvent::TextDelta(t) => shown.push_str(&t),
        StreamEvent::ToolUseStarted { id, name } => started.push((id, name)),
        StreamEvent::Retry { .. } => {}
    };
    for p in pieces {
        filter.feed(StreamEvent::TextDelta((*p).to_string()), &mut out);
    }
    filter.finish(&mut out);
    (shown, started)
}

fn char_boundaries(s: &str) -> Vec<usize> {
    (1..s.len()).filter(|i| s.is_char_boundary(*i)).collect()
}

#[test]
fn streaming_shows_the_text_and_never_a_call_at_any_split() {
    for (what, text, want, kept) in forms() {
        let want_started: Vec<(String, String)> = want
            .iter()
            .enumerate()
            .map(|(n, (name, _))| (format!("text_call_1_{n}"), name.clone()))
            .collect();
        let mut splits: Vec<Vec<&str>> = vec![vec![text.as_str()]];
        for i in char_boundaries(&text) {
            splits.push(vec![&text[..i], &text[i..]]);
        }
        let mut chars = Vec::new();
        let mut last = 0;
        for i in char_boundaries(&text) {
            chars.push(&text[last..i]);
            last = i;
        }
        chars.push(&text[last..]);
        splits.push(chars);
        for pieces in splits {
            let (shown, started) = stream(&pieces);
            assert_eq!(shown.trim(), kept, "{what} split as {pieces:?}");
            assert_eq!(started, want_started, "{what} split as {pieces:?}");
            assert!(
                !shown.contains("\"arguments\"") && !shown.contains("\"command\""),
                "{what}: a call was shown: {shown:?}"
            );
        }
    }
}

#[test]
fn streaming_plain_text_passes_through_as_it_comes() {
    let text =
        "Plain answer, with `code` and a ```python\nprint(1)\n``` block. <b>bold</b> [x](y) ✓";
    let (shown, started) = stream(&[text]);
    assert_eq!(shown, text);
    assert!(started.is_empty());
    // Text is shown before the answer is complete, except a possible opener at its end.
    let mut filter = protocol().stream_filter();
    let mut shown = String::new();
    filter.feed(
        StreamEvent::TextDelta("Hello world <tool_".into()),
        &mut |e| {
            if let StreamEvent::TextDelta(t) = e {
                shown.push_str(&t);
            }
        },
    );
    assert_eq!(shown, "Hello world ");
    let mut shown2 = String::new();
    filter.feed(StreamEvent::TextDelta("ish> stays".into()), &mut |e| {
        if let StreamEvent::TextDelta(t) = e {
            shown2.push_str(&t);
        }
    });
    assert_eq!(shown2, "<tool_ish> stays");
}

#[test]
fn a_retry_starts_the_filter_afresh() {
    let mut filter = protocol().stream_filter();
    let mut events = Vec::new();
    let mut out = |e: StreamEvent| events.push(e);
    filter.feed(StreamEvent::TextDelta("<tool_call>{\"na".into()), &mut out);
    filter.feed(
        StreamEvent::Retry {
            attempt: 1,
            wait_ms: 0,
            reason: "cut".into(),
        },
        &mut out,
    );
    filter.feed(StreamEvent::TextDelta("ok".into()), &mut out);
    filter.finish(&mut out);
    assert!(matches!(events[0], StreamEvent::Retry { .. }), "{events:?}");
    assert_eq!(events[1], StreamEvent::TextDelta("ok".into()));
    assert_eq!(events.len(), 2);
}

#[test]
fn the_wire_request_describes_the_tools_and_renders_the_history_as_text() {
    let history = vec![
        Message::user_text("Make a.py"),
        Message::assistant(vec![
            ContentPart::Text {
                text: "Writing it.".into(),
            },
            ContentPart::ToolUse {
                id: "text_call_1_0".into(),
                name: "write_file".into(),
                input: json!({"path": "a.py", "content": "print(1)\n"}),
            },
            ContentPart::ToolUse {
                id: "text_call_1_1".into(),
                name: "bash".into(),
                input: json!({"command": "python3 a.py"}),
            },
        ]),
        Message {
            role: Role::User,
            content: vec![
                ContentPart::ToolResult {
                    tool_use_id: "text_call_1_0".into(),
                    content: "wrote a.py".into(),
                    is_error: false,
                },
                ContentPart::ToolResult {
                    tool_use_id: "text_call_1_1".into(),
                    content: "exit 1".into(),
                    is_error: true,
                },
                ContentPart::Text {
                    text: "A notice.".into(),
                },
            ],
        },
    ];
    let req = request(history);
    let wire = TextProtocol::for_request(&req).wire_request(&req);
    assert!(wire.tools.is_empty());
    assert!(wire.system.starts_with("You are a test.\n\n# Tools"));
    for needle in [
        "## bash",
        "## write_file",
        "Arguments (JSON schema): {",
        "```json\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"notes.txt\", \"content\": \"first line\\nsecond line\\n\"}}\n```",
    ] {
        assert!(wire.system.contains(needle), "{needle}: {}", wire.system);
    }
    assert_eq!(wire.messages.len(), 3);
    assert_eq!(wire.messages[0].content_text(), "Make a.py");
    let assistant = wire.messages[1].content_text();
    assert_eq!(
        assistant,
        "Writing it.\n\n```json\n{\"name\": \"write_file\", \"arguments\": {\"content\":\"print(1)\\n\",\"path\":\"a.py\"}}\n```\n\n```json\n{\"name\": \"bash\", \"arguments\": {\"command\":\"python3 a.py\"}}\n```"
    );
    assert_eq!(
        wire.messages[2].content_text(),
        "<tool_result name=\"write_file\" id=\"text_call_1_0\">\nwrote a.py\n</tool_result>\n\n<tool_result name=\"bash\" id=\"text_call_1_1\" error=\"true\">\nexit 1\n</tool_result>\n\nA notice."
    );
    // What goes back parses to the same calls.
    let again = TextProtocol::for_request(&request(vec![Message::user_text("x")]))
        .parse_response(answer(&assistant));
    let calls: Vec<_> = again.tool_uses().map(|(_, n, i)| (n, i.clone())).collect();
    assert_eq!(
        calls,
        [
            (
                "write_file",
                json!({"path": "a.py", "content": "print(1)\n"})
            ),
            ("bash", json!({"command": "python3 a.py"}))
        ]
    );
}

#[test]
fn without_tools_the_request_is_unchanged() {
    let mut req = request(vec![Message::user_text("hi")]);
    req.tools.clear();
    let wire = TextProtocol::for_request(&req).wire_request(&req);
    assert_eq!(wire, req);
}

#[test]
fn native_calls_in_a_text_answer_are_kept() {
    let mut a = answer("<tool_call>{\"name\": \"list_files\", \"arguments\": {}}</tool_call>");
    a.parts.push(ContentPart::ToolUse {
        id: "call_9".into(),
        name: "bash".into(),
        input: json!({"command": "ls"}),
    });
    let r = protocol().parse_response(a);
    let ids: Vec<&str> = r.tool_uses().map(|(id, _, _)| id).collect();
    assert_eq!(ids, ["call_9", "text_call_1_0"]);
}

impl Message {
    fn content_text(&self) -> String {
        self.content
            .iter()
            .map(|p| match p {
                ContentPart::Text { text } => text.clone(),
                other => panic!("not text: {other:?}"),
            })
            .collect()
    }
}

#[test]
fn arguments_alone_are_taken_only_when_exactly_one_tool_fits() {
    let mut tools = tools();
    tools.push(ToolSpec {
        name: "read_file".into(),
        description: "Read.".into(),
        input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    });
    let mut req = request(vec![Message::user_text("go")]);
    req.tools = tools;
    let p = TextProtocol::for_request(&req);
    // `path` alone fits read_file and list_files: not a call.
    let r = p.parse_response(answer("```json\n{\"path\": \"a.txt\"}\n```"));
    assert_eq!(r.tool_uses().count(), 0);
    // `command` fits bash only.
    let r = p.parse_response(answer("```json\n{\"command\": \"ls\"}\n```"));
    let calls: Vec<_> = r.tool_uses().map(|(_, n, i)| (n, i.clone())).collect();
    assert_eq!(calls, [("bash", json!({"command": "ls"}))]);
    // In a call block too.
    let r = p.parse_response(answer("<tool_call>{\"command\": \"ls\"}</tool_call>"));
    assert_eq!(r.tool_uses().next().map(|(_, n, _)| n), Some("bash"));
}

#[test]
fn the_worked_example_in_the_prompt_is_itself_a_readable_call() {
    let system = system_prompt("S", &tools());
    let start = system.find("```json\n").unwrap();
    let end = start + 8 + system[start + 8..].find("```").unwrap() + 3;
    let (calls, kept) = parse(&system[start..end]);
    assert_eq!(
        calls,
        [call(
            "write_file",
            json!({"path": "notes.txt", "content": "first line\nsecond line\n"})
        )]
    );
    assert_eq!(kept, "");
}
