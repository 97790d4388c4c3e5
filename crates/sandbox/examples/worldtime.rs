use std::time::{Duration, Instant};
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    for i in 0..3 {
        let t = Instant::now();
        let sb = sandbox::Sandbox::new(sandbox::SandboxConfig::new(dir.path()))?;
        let created = t.elapsed();
        let t = Instant::now();
        for _ in 0..20 {
            sb.run("true", Duration::from_secs(30)).await?;
        }
        println!("{i}: new {:?}, per command {:?}", created, t.elapsed() / 20);
        let t = Instant::now();
        sb.end_session().await;
        println!("end_session {:?}", t.elapsed());
        let t = Instant::now();
        sb.run("true", Duration::from_secs(30)).await?;
        println!("fresh world + command {:?}", t.elapsed());
    }
    let mut c = sandbox::SandboxConfig::new(dir.path());
    c.namespaces = sandbox::NamespaceMode::Off;
    let sb = sandbox::Sandbox::new(c)?;
    let t = Instant::now();
    for _ in 0..20 {
        sb.run("true", Duration::from_secs(30)).await?;
    }
    println!("fallback per command {:?}", t.elapsed() / 20);
    Ok(())
}
