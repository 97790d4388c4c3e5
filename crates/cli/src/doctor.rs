//! `loopwright doctor`: resolves the provider, base URL and key, shows the price, and sends one
//! minimal live request through the Governor to verify the served model.

use crate::config::load_layers;
use crate::exit::{code, CmdResult, Failure};
use crate::models::per_mtok;
use crate::setup::{
    budget_setting, model_setting, resolve_governor, state_home, tool_protocol_flag,
    tool_protocol_of, GovernorRequest,
};
use crate::stdout::outln;
use crate::terminal::sanitize;
use anyhow::anyhow;
use governor::{Connection, Governor};
use llm::{Message, Prompt, ToolProtocol, ToolSpec};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The model to check, as provider/model.
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// Refuse the check if the model is not free.
    #[arg(long)]
    pub free_only: bool,
    /// The most the check may spend, in US dollars (it costs a few hundred tokens).
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub budget: Option<String>,
    /// Where the check's ledger goes [default: $XDG_STATE_HOME/loopwright/doctor].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How tools reach the model in the tool-call check: native or text [default: the
    /// provider's tool_protocol, else native].
    #[arg(long, value_name = "native|text", value_parser = ["native", "text"])]
    pub tool_protocol: Option<String>,
}

pub async fn run(args: DoctorArgs) -> CmdResult {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().ok();
    let file = load_layers(cwd.as_deref(), &env).map_err(Failure::usage)?;
    let model = model_setting(args.model.as_deref(), &file)?;
    let budget = budget_setting(args.budget.as_deref(), &file)?;
    let state_dir = match args.state_dir.clone() {
        Some(d) => d,
        None => state_home(&env, "doctor").ok_or_else(|| {
            Failure::usage(anyhow!(
                "neither XDG_STATE_HOME nor HOME is set; pass --state-dir"
            ))
        })?,
    };
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| Failure::usage(anyhow!("cannot create {}: {e}", state_dir.display())))?;
    let free_only = args.free_only || file.free_only.unwrap_or(false);
    outln!("model       {model}");
    let config = resolve_governor(
        &GovernorRequest {
            model: &model,
            budget,
            free_only,
            ledger_path: state_dir.join("ledger.jsonl"),
            record_to: None,
            budget_includes_ledger: false,
            tool_protocol: tool_protocol_flag(args.tool_protocol.as_deref())?,
            budget_name: None,
            run_id: None,
        },
        &file,
        &env,
    )?;
    outln!("provider    {}", config.model.provider().name());
    outln!("endpoint    {}", config.provider.location());
    let protocol = tool_protocol_of(&config).unwrap_or_default();
    if let Connection::Http { endpoint, .. } = &config.provider.connection {
        outln!(
            "key         {}",
            match endpoint.api_key.as_deref() {
                Some(k) if k.chars().count() > 12 => {
                    let head: String = k.chars().take(3).collect();
                    let tail: String = k
                        .chars()
                        .rev()
                        .take(4)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    format!("set ({head}…{tail})")
                }
                Some(_) => "set".to_string(),
                None => "none needed".to_string(),
            }
        );
    }
    let governor = Governor::new(config).map_err(Failure::governor)?;
    match governor.price() {
        Some(p) => outln!(
            "price       {} in / {} out / {} cache read / {} cache write per Mtok",
            per_mtok(p.price.input),
            per_mtok(p.price.output),
            per_mtok(p.price.cache_read),
            per_mtok(p.price.cache_write)
        ),
        None => outln!("price       unknown (no budget can be enforced)"),
    }
    if let Some(b) = governor.budget() {
        outln!(
            "budget      {b} ({} spent in {})",
            governor.spent(),
            state_dir.display()
        );
    }
    for w in governor.warnings() {
        outln!("warning     {}", sanitize(w));
    }
    let prompt = Prompt {
        system: "You are a connectivity check. Answer with one word.".into(),
        messages: vec![Message::user_text("Reply with the word: ok")],
        max_tokens_cap: Some(16),
        ..Prompt::default()
    };
    let mut ignore = |_e: llm::StreamEvent| {};
    let never = tokio_util::sync::CancellationToken::new();
    let settled = governor
        .call("doctor", &prompt, &never, &mut ignore)
        .await
        .map_err(Failure::governor)?;
    let response = settled.response;
    outln!(
        "served by   {} (matches the pin)",
        sanitize(&response.served_model)
    );
    outln!(
        "usage       {} in, {} out{}; cost {}",
        response.usage.total_input(),
        response.usage.output_tokens,
        if response.usage.estimated {
            " (estimated)"
        } else {
            ""
        },
        settled.cost
    );
    outln!("answer      {}", sanitize(response.text().trim()));
    tool_call_check(&governor, protocol).await?;
    outln!("ok");
    Ok(code::OK)
}

/// Asks the model to call one tool and says whether a call came back. A model that answers in
/// text is reported with the remedy, not as a failure: the connection itself works.
async fn tool_call_check(governor: &Governor, protocol: ToolProtocol) -> Result<(), Failure> {
    let prompt = Prompt {
        system: "You are a connectivity check. Use the tool you are given.".into(),
        messages: vec![Message::user_text(
            "Call the tool `report` with the argument word set to \"ok\".",
        )],
        tools: vec![ToolSpec {
            name: "report".into(),
            description: "Report one word.".into(),
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {"word": {"type": "string"}},
                "required": ["word"]
            }),
        }],
        max_tokens_cap: Some(256),
        ..Prompt::default()
    };
    let mut ignore = |_e: llm::StreamEvent| {};
    let never = tokio_util::sync::CancellationToken::new();
    let response = governor
        .call("doctor", &prompt, &never, &mut ignore)
        .await
        .map_err(Failure::governor)?
        .response;
    let called = response.tool_uses().find(|(_, name, _)| *name == "report");
    match (called, protocol) {
        (Some((_, _, input)), _) => {
            outln!(
                "tool call   ok ({protocol} protocol): report {}",
                sanitize(&input.to_string())
            )
        }
        (None, ToolProtocol::Native) => outln!(
            "tool call   none: the model answered in text instead of calling the tool ({}); \
             try --tool-protocol text, or tool_protocol = \"text\" under [providers.NAME]",
            sanitize(&agent::events::one_line(&response.text(), 80))
        ),
        (None, ToolProtocol::Text) => outln!(
            "tool call   none: the model wrote no tool call loopwright could read ({})",
            sanitize(&agent::events::one_line(&response.text(), 80))
        ),
    }
    Ok(())
}
