//! A tour of Seaworthy against the real engine: start an image and wait until it really serves,
//! look inside it, snapshot it, break it, restore it. Everything it creates is removed at exit.
//!
//! `cargo xtask demo` builds the busybox test image (from Debian's busybox-static) and runs this.

use std::time::Instant;

use seaworthy::{ContainerDefinition, Exec, Wait};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let t = Instant::now();
    let web = ContainerDefinition::new("seaworthy-test/busybox")
        .with_name("demo-web")
        .with_file("/www/index.html", "<h1>Hello from Seaworthy</h1>\n", 0o644)
        .with_cmd(["sh", "-c", "echo serving; exec httpd -f -v -p 80 -h /www"])
        .with_port(80)
        .with_wait(Wait::log("^serving$").and(Wait::http(80, "/index.html")))
        .start()
        .await?;
    println!(
        "started {} and saw it serve HTTP in {:.0?}",
        web.name(),
        t.elapsed()
    );

    let http = web.http(80)?;
    let body = http.get("/").send().await?.text().await?;
    println!("GET {}/ -> {}", http.base_url(), body.trim());

    let out = web
        .exec(Exec::shell("echo \"$(id -un) in $(pwd)\"; exit 3"))
        .await?;
    println!(
        "exec: exit code {}, stdout {:?}",
        out.exit_code,
        out.stdout_text().trim()
    );

    let meta = web.file_metadata("/www/index.html").await?;
    println!(
        "file /www/index.html: {} uid={} gid={} {} bytes",
        meta.mode_string(),
        meta.uid,
        meta.gid,
        meta.size
    );

    web.exec(["rm", "/bin/ps"]).await?;
    let tree = web.process_tree().await?;
    println!(
        "processes (read by the engine; this image has no ps any more):\n{}",
        tree.render().trim_end()
    );

    let port = web.host_port(80)?;
    let t = Instant::now();
    let snapshot = web.snapshot("hello").await?;
    println!("snapshot {:?} taken in {:.0?}", snapshot.name, t.elapsed());
    web.write_file("/www/index.html", "<h1>defaced</h1>\n", 0o644)
        .await?;
    println!(
        "after writing: {}",
        http.get("/").send().await?.text().await?.trim()
    );
    let t = Instant::now();
    web.restore(&snapshot).await?;
    println!(
        "restored in {:.0?}; same name {}, same host port {} -> {}",
        t.elapsed(),
        web.name(),
        web.host_port(80)? == port,
        http.get("/").send().await?.text().await?.trim()
    );

    let logs = web.logs().await?;
    println!(
        "the restored container logged {} lines so far",
        logs.lines.len()
    );
    println!(
        "done: the container, its network and the snapshot image are removed as the demo exits"
    );
    Ok(())
}
