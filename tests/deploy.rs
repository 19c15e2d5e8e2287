//! The deployment recipe in `deploy/` agrees with the server: the KServe manifest's and the
//! Dockerfile's port, probes and arguments, and the Vertex AI commands' routes. The manifest's
//! own arguments start a real `bertkit serve` (a docker build is not possible here).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bertkit::serve::DEFAULT_PORT;
use common::root;
use serde_json::Value;

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn manifest_container() -> Value {
    let m: Value = serde_json::from_str(&read("deploy/kserve-inferenceservice.json")).unwrap();
    assert_eq!(m["apiVersion"], "serving.kserve.io/v1beta1");
    assert_eq!(m["kind"], "InferenceService");
    m["spec"]["predictor"]["containers"][0].clone()
}

fn arg_after(args: &[String], flag: &str) -> String {
    let i = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{flag} missing from {args:?}"));
    args[i + 1].clone()
}

#[test]
fn the_kserve_manifest_and_dockerfile_match_the_servers_defaults() {
    let c = manifest_container();
    let port = DEFAULT_PORT as u64;
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(port));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/health", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"].as_u64(), Some(port), "{probe}");
    }
    let args: Vec<String> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    assert_eq!(arg_after(&args, "--port"), DEFAULT_PORT.to_string());
    assert_eq!(arg_after(&args, "--host"), "0.0.0.0", "a container must listen beyond loopback");
    assert_eq!(arg_after(&args, "--model"), "/mnt/models", "KServe's storage initializer mounts the model there");

    let docker = read("deploy/Dockerfile");
    assert_eq!(docker.lines().filter(|l| l.starts_with("FROM ")).count(), 2, "multi-stage");
    assert!(docker.contains(&format!("EXPOSE {DEFAULT_PORT}")) && docker.contains(&format!("BERTKIT_PORT={DEFAULT_PORT}")));
    let user = docker.lines().find_map(|l| l.strip_prefix("USER ")).expect("a USER line");
    assert!(user.trim() != "root" && user.trim() != "0", "runs as non-root");
    assert!(docker.contains(r#"ENTRYPOINT ["/usr/local/bin/bertkit", "serve"]"#));

    let vertex = read("deploy/vertex.md");
    assert!(vertex.contains(&format!("--container-ports={DEFAULT_PORT}")));
    assert!(vertex.contains("--container-health-route=/health"));
    assert!(vertex.contains("--container-predict-route=/v1/models/imdb:predict") && vertex.contains("--name=imdb"));
}

#[test]
fn the_manifests_arguments_start_a_server_that_answers_its_probes_and_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = export_tiny(tmp.path());
    let mut args: Vec<String> = manifest_container()["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    // The manifest's arguments, with this machine's model folder and a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (flag, value) in [("--model", model.to_str().unwrap().to_string()), ("--port", port.to_string()), ("--host", "127.0.0.1".into())] {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1] = value;
    }
    let name = arg_after(&args, "--name");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_bertkit"))
        .arg("serve")
        .args(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let start = Instant::now();
        while !client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            if start.elapsed() > Duration::from_secs(60) {
                return Err("the readiness probe never answered 200".to_string());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = client
            .post(format!("{base}/v1/models/{name}:predict"))
            .json(&serde_json::json!({"instances": [{"text": "I loved it"}]}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(r.status().as_u16())
    });
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
    assert_eq!(outcome, Ok(200));
}

/// A tiny untrained classifier exported as `bertkit train` does.
fn export_tiny(root: &Path) -> std::path::PathBuf {
    use bertkit::artifact::{ModelMeta, save_classifier};
    use bertkit::model::fast::BertModel;
    use bertkit::model::{Family, HeadSpec, Pooling, Pretrained, TextClassifier};
    use bertkit::tokenize::{EncodePlan, TextEncoder};
    let base = root.join("tiny-bert");
    common::tiny::write_tiny_bert(&base);
    // The tiny BERT has 64 positions.
    let plan = EncodePlan { seq_len: 64, ..EncodePlan::default() };
    let pretrained = Pretrained::open(&base, plan).unwrap();
    let head = HeadSpec::family_default(Family::Bert, pretrained.config.hidden_size, 1, 0.1);
    let model = BertModel::with_new_head(&pretrained, Pooling::Mean, head, 7).unwrap();
    let meta = ModelMeta::new(vec!["neg".into(), "pos".into()], plan, Pooling::Mean, model.head);
    let out = root.join("imdb");
    let tok = TextEncoder::Subword(pretrained.tokenizer);
    save_classifier(&out, &TextClassifier::Bert(model), &meta, &tok, |_| Ok(())).unwrap();
    out
}
