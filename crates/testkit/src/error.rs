//! Errors of the fake server itself (not the faults it injects).

/// What went wrong starting the fake server or loading a script.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("testkit could not listen on {addr}: {source}; pick another port or free this one")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("testkit could not read script {path}: {source}")]
    ReadScript {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("testkit script {path} is not a valid script: {source}")]
    ParseScript {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("testkit could not start its runtime thread: {0}")]
    Runtime(String),
}
