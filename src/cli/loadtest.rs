//! `bertkit loadtest`: closed-loop load on a loopback prediction server, reporting throughput and
//! p50/p95/p99 latency per concurrency level. Refuses any address outside the loopback range.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct LoadtestCmd {
    /// Predict URL on this machine, e.g. http://127.0.0.1:8080/v1/models/imdb:predict (or, with
    /// --protocol v2, http://127.0.0.1:8080/v2/models/imdb/infer)
    #[arg(long, env = "BERTKIT_URL")]
    url: String,
    /// v1 (TF Serving `{"instances": ...}` bodies) or v2 (Open Inference Protocol BYTES tensors).
    #[arg(long, env = "BERTKIT_PROTOCOL", default_value = "v1")]
    protocol: String,
    /// Concurrent clients, one run per value.
    #[arg(long, env = "BERTKIT_CONCURRENCY", value_delimiter = ',', default_value = "1,8,32", value_parser = super::at_least_one)]
    concurrency: Vec<usize>,
    /// Seconds per run.
    #[arg(long, env = "BERTKIT_DURATION", default_value_t = 10.0)]
    duration: f64,
    /// short (a sentence) or review (an IMDB-length review, ~230 words).
    #[arg(long, env = "BERTKIT_TEXTS", default_value = "short")]
    texts: String,
    /// Instances per request.
    #[arg(long, env = "BERTKIT_INSTANCES", default_value_t = 1, value_parser = super::at_least_one)]
    instances: usize,
    /// Bearer API key, if the server wants one.
    #[arg(long, env = "BERTKIT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

const SHORT: &str = "I love this movie and highly recommend it";
const REVIEW: &str = "I went into this film expecting very little, and honestly I came out surprised. \
The story takes a while to get going, and the first act drags with too many scenes of characters \
explaining things the audience already knows. But once the two leads finally share the screen, \
something clicks: their timing is sharp, the dialogue loosens up, and the jokes land more often than \
not. The supporting cast is uneven; the villain is more silly than menacing and his henchmen are \
forgettable. The photography is lovely, especially the night scenes by the harbour, and the score \
never overwhelms the actors. It is not a masterpiece, and the ending is far too neat, but I laughed, \
I was moved once or twice, and I did not check my watch. Worth a rental on a rainy evening.";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl LoadtestCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let url = reqwest::Url::parse(&self.url).with_context(|| format!("bad --url {}", self.url))?;
        let host = url.host_str().unwrap_or("");
        let loopback = host == "localhost"
            || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        anyhow::ensure!(loopback, "loadtest only targets this machine (127.0.0.0/8, ::1, localhost), not `{host}`");
        anyhow::ensure!(self.duration > 0.0 && self.duration <= 600.0, "--duration must be in (0, 600] seconds");
        let text = match self.texts.as_str() {
            "short" => SHORT,
            "review" => REVIEW,
            other => anyhow::bail!("--texts `{other}`: expected short or review"),
        };
        let body = match self.protocol.as_str() {
            "v1" => serde_json::json!({ "instances": vec![serde_json::json!({ "text": text }); self.instances] }),
            "v2" => serde_json::json!({
                "inputs": [{ "name": "text", "shape": [self.instances], "datatype": "BYTES", "data": vec![text; self.instances] }]
            }),
            other => anyhow::bail!("--protocol `{other}`: expected v1 or v2"),
        };
        let body = serde_json::to_vec(&body)?;
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        println!("| protocol | clients | texts | requests | errors | req/s | instances/s | p50 ms | p95 ms | p99 ms |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for &c in &self.concurrency {
            let (lat, errors, secs) = runtime.block_on(run_level(&url, &body, c, self.duration, self.api_key.clone()))?;
            let mut sorted = lat.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            println!(
                "| {} | {c} | {} x{} | {n} | {errors} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                self.protocol,
                self.texts,
                self.instances,
                n as f64 / secs,
                (n * self.instances) as f64 / secs,
                percentile(&sorted, 50.0) * 1e3,
                percentile(&sorted, 95.0) * 1e3,
                percentile(&sorted, 99.0) * 1e3,
            );
        }
        Ok(())
    }
}

/// `clients` loops each sending the next request as soon as the last one answered, for `secs`.
async fn run_level(
    url: &reqwest::Url,
    body: &[u8],
    clients: usize,
    secs: f64,
    api_key: Option<String>,
) -> anyhow::Result<(Vec<f64>, usize, f64)> {
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build()?;
    let body = Arc::new(body.to_vec());
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, body, key) = (client.clone(), url.clone(), body.clone(), api_key.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < end {
                let t0 = Instant::now();
                let mut req = client.post(url.clone()).header("content-type", "application/json").body(body.to_vec());
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t0.elapsed().as_secs_f64());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    Ok((all, errors, start.elapsed().as_secs_f64()))
}
