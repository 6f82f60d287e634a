// The safe wrapper against the real libvlmrt on the tiny fixtures of tests/fixtures: the same values as the C
// tests (tokens of transformers' generate(), cases.json "one_image"; BLEU / ROUGE-L from sacrebleu 2.6.0 and
// rouge-score 0.1.2 in tools/oracle/.venv).
use std::sync::{Arc, Mutex};

fn fixtures() -> String {
    std::env::var("VLMRT_FIXTURES_DIR").unwrap_or_else(|_| format!("{}/../../tests/fixtures", env!("CARGO_MANIFEST_DIR")))
}

fn model() -> String {
    format!("{}/session/qwen2_vl_tiny", fixtures())
}

fn image_prompt() -> vlmrt::Prompt {
    vlmrt::Prompt::new("Describe this image .").image(&format!("{}/session/wide.png", fixtures()))
}

const EXPECTED: [i64; 8] = [6, 6, 6, 6, 6, 101, 101, 101];
const EXPECTED_TEXT: &str = "assistant assistant assistant assistant assistant w101 w101 w101";

#[test]
fn versions() {
    assert_eq!(vlmrt::version(), "0.1.0");
    assert_eq!(vlmrt::version_number(), 100);
    assert_eq!(vlmrt::abi_version(), 0);
    assert_eq!(vlmrt::Status::NotFound.name(), "not found");
}

#[test]
fn checkpoint_and_image() {
    let folder = vlmrt::model_locate(&format!("{}/io/sharded", fixtures())).unwrap();
    assert!(folder.ends_with("sharded"));
    let checkpoint = vlmrt::Checkpoint::open(&folder).unwrap();
    assert_eq!(checkpoint.len(), 5);
    let first = checkpoint.tensor(0).unwrap();
    assert_eq!(first, vlmrt::TensorInfo { name: "model.embed_tokens.weight".into(), dtype: "BF16".into(), shape: vec![16, 8], nbytes: 256 });
    assert_eq!(checkpoint.tensors().unwrap().len(), 5);
    let err = checkpoint.tensor(5).unwrap_err();
    assert_eq!(err.status, vlmrt::Status::InvalidArgument);
    assert!(err.message.contains("out of range"), "{}", err.message);

    let image = vlmrt::Image::load(&format!("{}/image/rgb8.png", fixtures())).unwrap();
    assert_eq!((image.width, image.height, image.pixels.len()), (23, 13, 23 * 13 * 3));
    let bytes = std::fs::read(format!("{}/image/rgb8.png", fixtures())).unwrap();
    assert_eq!(vlmrt::Image::decode(&bytes).unwrap(), image);
    let err = vlmrt::Image::load(&format!("{}/image/truncated.jpg", fixtures())).unwrap_err();
    assert_eq!(err.status, vlmrt::Status::CorruptData);
    assert!(err.to_string().starts_with("corrupt data: "), "{}", err);
    let err = vlmrt::Image::decode(b"plain text").unwrap_err();
    assert_eq!(err.status, vlmrt::Status::Unsupported);
    // A Rust string with a NUL cannot become a C string: refused before the call.
    assert_eq!(vlmrt::model_locate("a\0b").unwrap_err().status, vlmrt::Status::InvalidArgument);
}

#[test]
fn session_generate_and_score() {
    let session = vlmrt::Session::new(&vlmrt::SessionOptions::new(&model())).unwrap();
    let options = vlmrt::GenerationOptions { max_new_tokens: Some(8), do_sample: Some(false), ..Default::default() };
    let mut streamed = Vec::new();
    let results = session
        .generate_streaming(&[image_prompt()], &options, |index, token| {
            assert_eq!(index, 0);
            streamed.push(token);
            true
        })
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tokens, EXPECTED);
    assert_eq!(results[0].text, EXPECTED_TEXT);
    assert_eq!(results[0].finish_reason, "length");
    assert_eq!(streamed, EXPECTED);

    // Returning false stops the generation.
    let stopped = session.generate_streaming(&[image_prompt()], &options, |_, _| false).unwrap();
    assert_eq!(stopped[0].tokens.len(), 1);
    assert_eq!(stopped[0].finish_reason, "cancelled");

    // Batched prompts.
    let two = session.generate(&[image_prompt(), image_prompt()], &options).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].tokens, EXPECTED);

    let scores = session.score(&[(image_prompt(), EXPECTED_TEXT), (image_prompt(), "two cats")]).unwrap();
    assert_eq!(scores[0].token_logprobs.len(), 8);
    assert!(scores[0].is_greedy);
    let sum: f64 = scores[0].token_logprobs.iter().sum();
    assert!((sum - scores[0].sum).abs() < 1e-9);
    assert!(!scores[1].is_greedy);
    assert!(scores[1].sum < 0.0);

    let err = session.score(&[(image_prompt(), "")]).unwrap_err();
    assert_eq!(err.status, vlmrt::Status::InvalidArgument);
    let bad = vlmrt::GenerationOptions { top_p: Some(1.5), ..Default::default() };
    let err = session.generate(&[image_prompt()], &bad).unwrap_err();
    assert!(err.message.contains("top_p"), "{}", err.message);
    let missing = vlmrt::Prompt::new("x").image(&format!("{}/no-such.png", fixtures()));
    assert_eq!(session.generate(&[missing], &options).unwrap_err().status, vlmrt::Status::NotFound);
}

#[test]
fn session_errors() {
    let err = vlmrt::Session::new(&vlmrt::SessionOptions::new(&format!("{}/session/missing", fixtures()))).err().unwrap();
    assert_eq!(err.status, vlmrt::Status::NotFound);
    let mut options = vlmrt::SessionOptions::new(&model());
    options.device = Some("tpu".into());
    let err = vlmrt::Session::new(&options).err().unwrap();
    assert_eq!(err.status, vlmrt::Status::InvalidArgument);
    assert!(err.message.contains("tpu"));
}

#[test]
fn cancel_from_another_thread() {
    let session = vlmrt::Session::new(&vlmrt::SessionOptions::new(&model())).unwrap();
    let canceller = session.canceller();
    let options = vlmrt::GenerationOptions { max_new_tokens: Some(400), min_new_tokens: Some(400), do_sample: Some(false), ..Default::default() };
    let started = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let results = std::thread::scope(|scope| {
        let signal = Arc::clone(&started);
        scope.spawn(move || {
            let (lock, cv) = &*signal;
            let mut s = lock.lock().unwrap();
            while !*s {
                s = cv.wait(s).unwrap();
            }
            canceller.cancel();
        });
        let mut count = 0;
        session
            .generate_streaming(&[image_prompt()], &options, |_, _| {
                count += 1;
                if count == 1 {
                    let (lock, cv) = &*started;
                    *lock.lock().unwrap() = true;
                    cv.notify_all();
                }
                // Give the canceller time to act before the generation could finish on its own.
                if count == 300 {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                true
            })
            .unwrap()
    });
    assert_eq!(results[0].finish_reason, "cancelled");
    assert!(results[0].tokens.len() < 400);
    assert_eq!(&results[0].tokens[..results[0].tokens.len().min(8)], &EXPECTED[..results[0].tokens.len().min(8)]);
}

#[test]
fn metrics() {
    let examples = [vlmrt::MetricsExample { prediction: EXPECTED_TEXT, references: vec!["the assistant says w101 w101 w101"] }];
    let options = vlmrt::MetricsOptions { meteor: vlmrt::MeteorMode::WithoutWordnet, ..Default::default() };
    let result = vlmrt::score_metrics(&examples, &options).unwrap();
    assert_eq!(result.num_examples(), 1);
    let (bleu, implementation) = result.value("bleu").unwrap();
    assert!((bleu - 22.089591134157878).abs() < 1e-9, "{}", bleu);
    assert!(implementation.starts_with("sacrebleu"), "{}", implementation);
    let (rouge, _) = result.value("rougeL").unwrap();
    assert!((rouge - 0.5714285714285715).abs() < 1e-12, "{}", rouge);
    assert!(result.corpus_json().unwrap().contains("\"bleu\""));
    assert!(result.example_json(0).unwrap().starts_with('{'));
    assert_eq!(result.value("nope").unwrap_err().status, vlmrt::Status::NotFound);
    assert_eq!(result.example_json(3).unwrap_err().status, vlmrt::Status::InvalidArgument);
    let no_refs = [vlmrt::MetricsExample { prediction: "x", references: vec![] }];
    assert_eq!(vlmrt::score_metrics(&no_refs, &options).err().unwrap().status, vlmrt::Status::InvalidArgument);
}

#[test]
fn log_callback() {
    let lines: Arc<Mutex<Vec<(vlmrt::LogLevel, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    vlmrt::set_log_callback(Some(Box::new(move |level, line| sink.lock().unwrap().push((level, line.to_string())))));
    vlmrt::set_log_level(vlmrt::LogLevel::Debug).unwrap();
    assert_eq!(vlmrt::log_level(), vlmrt::LogLevel::Debug);
    // Failures are logged at debug, one whole line each; other tests run in parallel, so look for ours.
    let _ = vlmrt::Checkpoint::open("/nonexistent/vlmrt-rust-log-test");
    vlmrt::set_log_callback(None);
    vlmrt::set_log_level(vlmrt::LogLevel::Info).unwrap();
    let got = lines.lock().unwrap();
    let ours: Vec<_> = got.iter().filter(|(_, l)| l.contains("vlmrt-rust-log-test")).collect();
    assert!(!ours.is_empty(), "{:?}", *got);
    assert_eq!(ours[0].0, vlmrt::LogLevel::Debug);
    assert!(ours[0].1.starts_with("vlm_checkpoint_open failed (not found): "), "{}", ours[0].1);
    assert!(got.iter().all(|(_, l)| !l.contains('\n')));
}
