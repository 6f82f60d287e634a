//! Safe Rust bindings to libvlmrt (include/vlmrt.h): RAII handles freed on `Drop`, `Result<_, Error>` with the
//! library's status and message, `&str` in and `String` out.
//!
//! Thread rules follow the header: a [`Session`] is `Send` but not `Sync` (one call at a time, from any one
//! thread), and a [`Canceller`] taken from it may be used from any thread while the session lives. A
//! [`Checkpoint`] is `Send + Sync`. Functions without a handle may be called from anywhere.
//!
//! ```no_run
//! let session = vlmrt::Session::new(&vlmrt::SessionOptions::new("path/to/model"))?;
//! let answer = session.generate(&[vlmrt::Prompt::new("Describe this image.").image("cat.png")],
//!                               &vlmrt::GenerationOptions { max_new_tokens: Some(32), ..Default::default() })?;
//! println!("{}", answer[0].text);
//! # Ok::<(), vlmrt::Error>(())
//! ```
pub mod sys;

use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;
use std::sync::Mutex;

/// The status codes of the C API (`vlm_status`), without `VLM_OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InvalidArgument,
    NotFound,
    Io,
    CorruptData,
    Unsupported,
    LimitExceeded,
    Cancelled,
    OutOfMemory,
    Internal,
    /// A code this version of the crate does not know.
    Other(i32),
}

impl Status {
    fn from_raw(code: sys::vlm_status) -> Status {
        match code {
            sys::VLM_ERR_INVALID_ARGUMENT => Status::InvalidArgument,
            sys::VLM_ERR_NOT_FOUND => Status::NotFound,
            sys::VLM_ERR_IO => Status::Io,
            sys::VLM_ERR_CORRUPT_DATA => Status::CorruptData,
            sys::VLM_ERR_UNSUPPORTED => Status::Unsupported,
            sys::VLM_ERR_LIMIT_EXCEEDED => Status::LimitExceeded,
            sys::VLM_ERR_CANCELLED => Status::Cancelled,
            sys::VLM_ERR_OUT_OF_MEMORY => Status::OutOfMemory,
            sys::VLM_ERR_INTERNAL => Status::Internal,
            other => Status::Other(other),
        }
    }
    /// The library's name for the status ("not found").
    pub fn name(self) -> String {
        let code = match self {
            Status::InvalidArgument => sys::VLM_ERR_INVALID_ARGUMENT,
            Status::NotFound => sys::VLM_ERR_NOT_FOUND,
            Status::Io => sys::VLM_ERR_IO,
            Status::CorruptData => sys::VLM_ERR_CORRUPT_DATA,
            Status::Unsupported => sys::VLM_ERR_UNSUPPORTED,
            Status::LimitExceeded => sys::VLM_ERR_LIMIT_EXCEEDED,
            Status::Cancelled => sys::VLM_ERR_CANCELLED,
            Status::OutOfMemory => sys::VLM_ERR_OUT_OF_MEMORY,
            Status::Internal => sys::VLM_ERR_INTERNAL,
            Status::Other(code) => code,
        };
        unsafe { string_from(sys::vlm_status_name(code)) }
    }
}

/// A failed call: the status and the message the library recorded for it (vlm_last_error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Turns a status into a Result, reading the message on the same thread right after the call.
fn check(code: sys::vlm_status) -> Result<()> {
    if code == sys::VLM_OK {
        return Ok(());
    }
    Err(Error { status: Status::from_raw(code), message: unsafe { string_from(sys::vlm_last_error()) } })
}

fn argument_error(message: String) -> Error {
    Error { status: Status::InvalidArgument, message }
}

/// A NUL-terminated copy of `s`; a string with an interior NUL is refused as an invalid argument.
fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| argument_error(format!("{} contains a NUL byte", what)))
}

/// Copies a C string the library owns (NULL gives ""). Invalid UTF-8 is replaced, never trusted.
unsafe fn string_from(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Copies and frees a string the library returned with ownership (vlm_string_free).
unsafe fn take_string(p: *mut c_char) -> String {
    let s = string_from(p);
    sys::vlm_string_free(p);
    s
}

/// The library's version, "MAJOR.MINOR.PATCH".
pub fn version() -> String {
    unsafe { string_from(sys::vlm_version()) }
}
/// MAJOR*10000 + MINOR*100 + PATCH.
pub fn version_number() -> i32 {
    unsafe { sys::vlm_version_number() }
}
/// The shared library's ABI version (SOVERSION).
pub fn abi_version() -> i32 {
    unsafe { sys::vlm_abi_version() }
}

/// Resolves a model folder or a Hugging Face id in the offline cache to a local folder.
pub fn model_locate(model: &str) -> Result<String> {
    let model = c_string(model, "model")?;
    let mut out: *mut c_char = ptr::null_mut();
    check(unsafe { sys::vlm_model_locate(model.as_ptr(), &mut out) })?;
    Ok(unsafe { take_string(out) })
}

// ---- checkpoints ----------------------------------------------------------------------------------------

/// One tensor of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<i64>,
    pub nbytes: u64,
}

/// A safetensors checkpoint opened for inspection; closed on drop.
pub struct Checkpoint {
    raw: *mut sys::vlm_checkpoint,
}

// The header allows reading a checkpoint from several threads at once.
unsafe impl Send for Checkpoint {}
unsafe impl Sync for Checkpoint {}

impl Checkpoint {
    pub fn open(path: &str) -> Result<Checkpoint> {
        let path = c_string(path, "path")?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::vlm_checkpoint_open(path.as_ptr(), &mut raw) })?;
        Ok(Checkpoint { raw })
    }
    pub fn len(&self) -> usize {
        unsafe { sys::vlm_checkpoint_tensor_count(self.raw) }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn tensor(&self, index: usize) -> Result<TensorInfo> {
        let mut info = sys::vlm_tensor_info { name: ptr::null(), dtype: ptr::null(), ndim: 0, shape: ptr::null(), nbytes: 0 };
        check(unsafe { sys::vlm_checkpoint_tensor_info(self.raw, index, &mut info) })?;
        let shape = if info.ndim == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(info.shape, info.ndim).to_vec() } };
        Ok(TensorInfo {
            name: unsafe { string_from(info.name) },
            dtype: unsafe { string_from(info.dtype) },
            shape,
            nbytes: info.nbytes,
        })
    }
    /// Every tensor, ordered by name.
    pub fn tensors(&self) -> Result<Vec<TensorInfo>> {
        (0..self.len()).map(|i| self.tensor(i)).collect()
    }
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        unsafe { sys::vlm_checkpoint_free(self.raw) }
    }
}

// ---- images ---------------------------------------------------------------------------------------------

/// An 8-bit RGB image, copied out of the library (rows top to bottom, 3 bytes per pixel, no padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

unsafe fn take_image(raw: *mut sys::vlm_image) -> Image {
    let img = &*raw;
    let n = img.width as usize * img.height as usize * 3;
    let pixels = if n == 0 { Vec::new() } else { std::slice::from_raw_parts(img.pixels, n).to_vec() };
    let out = Image { width: img.width, height: img.height, pixels };
    sys::vlm_image_free(raw);
    out
}

impl Image {
    /// Decodes a PNG or JPEG file as Pillow does (EXIF orientation applied, converted to RGB).
    pub fn load(path: &str) -> Result<Image> {
        let path = c_string(path, "path")?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::vlm_image_load(path.as_ptr(), ptr::null(), &mut raw) })?;
        Ok(unsafe { take_image(raw) })
    }
    /// The same from bytes in memory.
    pub fn decode(data: &[u8]) -> Result<Image> {
        let mut raw = ptr::null_mut();
        check(unsafe { sys::vlm_image_decode(data.as_ptr() as *const c_void, data.len(), ptr::null(), &mut raw) })?;
        Ok(unsafe { take_image(raw) })
    }
}

// ---- sessions ---------------------------------------------------------------------------------------------

/// Options of [`Session::new`]; `None` and 0 keep the library's defaults.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    pub model: String,
    pub device: Option<String>,
    pub dtype: Option<String>,
    pub min_pixels: u64,
    pub max_pixels: u64,
    pub num_threads: i32,
    /// 0 (default): 12-bit coded weight copies for bfloat16 decode steps where the CPU reads them; -1: none
    /// (vlm_session_options.coded_weights).
    pub coded_weights: i32,
}

impl SessionOptions {
    pub fn new(model: &str) -> SessionOptions {
        SessionOptions { model: model.to_string(), ..Default::default() }
    }
}

/// One prompt: a user message (images first, then the text) and an optional system message.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    pub text: String,
    pub system_message: Option<String>,
    pub images: Vec<String>,
}

impl Prompt {
    pub fn new(text: &str) -> Prompt {
        Prompt { text: text.to_string(), ..Default::default() }
    }
    /// Adds an image file (PNG or JPEG).
    pub fn image(mut self, path: &str) -> Prompt {
        self.images.push(path.to_string());
        self
    }
    pub fn system(mut self, message: &str) -> Prompt {
        self.system_message = Some(message.to_string());
        self
    }
}

/// The C strings of one prompt, kept alive while the library reads them.
struct RawPrompt {
    _text: CString,
    _system: Option<CString>,
    _images: Vec<CString>,
    _image_ptrs: Vec<*const c_char>,
    raw: sys::vlm_prompt,
}

impl RawPrompt {
    fn new(p: &Prompt) -> Result<RawPrompt> {
        let text = c_string(&p.text, "prompt text")?;
        let system = match &p.system_message {
            Some(s) => Some(c_string(s, "system message")?),
            None => None,
        };
        let images = p.images.iter().map(|i| c_string(i, "image path")).collect::<Result<Vec<_>>>()?;
        let image_ptrs: Vec<*const c_char> = images.iter().map(|c| c.as_ptr()).collect();
        let raw = sys::vlm_prompt {
            text: text.as_ptr(),
            system_message: system.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            image_paths: if image_ptrs.is_empty() { ptr::null() } else { image_ptrs.as_ptr() },
            num_images: image_ptrs.len(),
        };
        // The CStrings' heap buffers and the Vec's buffer do not move when RawPrompt moves.
        Ok(RawPrompt { _text: text, _system: system, _images: images, _image_ptrs: image_ptrs, raw })
    }
}

/// Generation settings; `None` leaves the checkpoint's generation_config.json (then transformers' defaults).
#[derive(Debug, Clone, Default)]
pub struct GenerationOptions {
    pub max_new_tokens: Option<i32>,
    pub min_new_tokens: Option<i32>,
    pub num_beams: Option<i32>,
    pub top_k: Option<i32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    pub length_penalty: Option<f64>,
    pub do_sample: Option<bool>,
    pub seed: u64,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<i64>,
    /// "eos", "length", "stop_string" or "cancelled".
    pub finish_reason: String,
}

/// The log-likelihood of a continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub token_logprobs: Vec<f64>,
    pub sum: f64,
    pub is_greedy: bool,
}

/// A loaded model with its tokenizer, chat template and image processor; freed on drop.
pub struct Session {
    raw: *mut sys::vlm_session,
}

// A session may move between threads; it is not Sync, so no two threads can call it at once (the header's rule).
unsafe impl Send for Session {}

/// Cancels a running generation of its session from any thread (vlm_session_cancel).
#[derive(Clone, Copy)]
pub struct Canceller<'a> {
    raw: *mut sys::vlm_session,
    _session: PhantomData<&'a ()>,
}

unsafe impl Send for Canceller<'_> {}
unsafe impl Sync for Canceller<'_> {}

impl Canceller<'_> {
    /// Asks the session's running generation to stop after the current step; its results end "cancelled".
    pub fn cancel(&self) {
        unsafe { sys::vlm_session_cancel(self.raw) }
    }
}

struct Streaming<'f> {
    callback: &'f mut dyn FnMut(usize, i64) -> bool,
    panicked: bool,
}

unsafe extern "C" fn on_token_trampoline(prompt_index: usize, token: i64, user_data: *mut c_void) -> c_int {
    let streaming = &mut *(user_data as *mut Streaming);
    if streaming.panicked {
        return 0;
    }
    // A panic must not unwind into C: stop the generation and re-raise after the call returns.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (streaming.callback)(prompt_index, token))) {
        Ok(keep_going) => keep_going as c_int,
        Err(_) => {
            streaming.panicked = true;
            0
        }
    }
}

impl Session {
    pub fn new(options: &SessionOptions) -> Result<Session> {
        let model = c_string(&options.model, "model")?;
        let device = options.device.as_deref().map(|d| c_string(d, "device")).transpose()?;
        let dtype = options.dtype.as_deref().map(|d| c_string(d, "dtype")).transpose()?;
        let mut raw_options = std::mem::MaybeUninit::<sys::vlm_session_options>::uninit();
        let mut o = unsafe {
            sys::vlm_session_options_init(raw_options.as_mut_ptr());
            raw_options.assume_init()
        };
        o.model = model.as_ptr();
        o.device = device.as_ref().map_or(ptr::null(), |d| d.as_ptr());
        o.dtype = dtype.as_ref().map_or(ptr::null(), |d| d.as_ptr());
        o.min_pixels = options.min_pixels;
        o.max_pixels = options.max_pixels;
        o.num_threads = options.num_threads;
        o.coded_weights = options.coded_weights;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::vlm_session_create(&o, &mut raw) })?;
        Ok(Session { raw })
    }

    /// A handle that cancels this session's running generation from another thread.
    pub fn canceller(&self) -> Canceller<'_> {
        Canceller { raw: self.raw, _session: PhantomData }
    }

    /// Generates one continuation per prompt (batched).
    pub fn generate(&self, prompts: &[Prompt], options: &GenerationOptions) -> Result<Vec<Generation>> {
        self.generate_impl(prompts, options, None)
    }

    /// Same, calling `on_token(prompt_index, token)` for every new token; return false to stop.
    pub fn generate_streaming(
        &self,
        prompts: &[Prompt],
        options: &GenerationOptions,
        mut on_token: impl FnMut(usize, i64) -> bool,
    ) -> Result<Vec<Generation>> {
        self.generate_impl(prompts, options, Some(&mut on_token))
    }

    fn generate_impl(
        &self,
        prompts: &[Prompt],
        options: &GenerationOptions,
        on_token: Option<&mut dyn FnMut(usize, i64) -> bool>,
    ) -> Result<Vec<Generation>> {
        let raw_prompts = prompts.iter().map(RawPrompt::new).collect::<Result<Vec<_>>>()?;
        let c_prompts: Vec<sys::vlm_prompt> = raw_prompts.iter().map(|p| p.raw).collect();
        let mut raw_options = std::mem::MaybeUninit::<sys::vlm_generation_options>::uninit();
        let mut o = unsafe {
            sys::vlm_generation_options_init(raw_options.as_mut_ptr());
            raw_options.assume_init()
        };
        if let Some(v) = options.max_new_tokens {
            o.max_new_tokens = v;
        }
        if let Some(v) = options.min_new_tokens {
            o.min_new_tokens = v;
        }
        if let Some(v) = options.num_beams {
            o.num_beams = v;
        }
        if let Some(v) = options.top_k {
            o.top_k = v;
        }
        if let Some(v) = options.temperature {
            o.temperature = v;
        }
        if let Some(v) = options.top_p {
            o.top_p = v;
        }
        if let Some(v) = options.repetition_penalty {
            o.repetition_penalty = v;
        }
        if let Some(v) = options.length_penalty {
            o.length_penalty = v;
        }
        if let Some(v) = options.do_sample {
            o.do_sample = v as c_int;
        }
        o.seed = options.seed;
        let mut streaming = on_token.map(|callback| Streaming { callback, panicked: false });
        if let Some(s) = streaming.as_mut() {
            o.on_token = Some(on_token_trampoline);
            o.user_data = s as *mut Streaming as *mut c_void;
        }
        let mut out: *mut sys::vlm_generation = ptr::null_mut();
        let status = unsafe { sys::vlm_generate(self.raw, c_prompts.as_ptr(), c_prompts.len(), &o, &mut out) };
        let result = check(status);
        if streaming.as_ref().map_or(false, |s| s.panicked) {
            unsafe { sys::vlm_generations_free(out, c_prompts.len()) };
            panic!("the on_token callback panicked");
        }
        result?;
        let list = unsafe { std::slice::from_raw_parts(out, c_prompts.len()) };
        let generations = list
            .iter()
            .map(|g| Generation {
                text: unsafe { string_from(g.text) },
                tokens: if g.num_tokens == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(g.tokens, g.num_tokens).to_vec() } },
                finish_reason: unsafe { string_from(g.finish_reason) },
            })
            .collect();
        unsafe { sys::vlm_generations_free(out, c_prompts.len()) };
        Ok(generations)
    }

    /// Log-likelihood of `continuation` after each prompt (formatted with the chat template).
    pub fn score(&self, requests: &[(Prompt, &str)]) -> Result<Vec<Score>> {
        let raw_prompts = requests.iter().map(|(p, _)| RawPrompt::new(p)).collect::<Result<Vec<_>>>()?;
        let continuations = requests.iter().map(|(_, c)| c_string(c, "continuation")).collect::<Result<Vec<_>>>()?;
        let c_requests: Vec<sys::vlm_score_request> = raw_prompts
            .iter()
            .zip(&continuations)
            .map(|(p, c)| sys::vlm_score_request { prompt: p.raw, continuation: c.as_ptr() })
            .collect();
        let mut out: *mut sys::vlm_score_result = ptr::null_mut();
        check(unsafe { sys::vlm_score(self.raw, c_requests.as_ptr(), c_requests.len(), &mut out) })?;
        let list = unsafe { std::slice::from_raw_parts(out, c_requests.len()) };
        let scores = list
            .iter()
            .map(|s| Score {
                token_logprobs: if s.num_tokens == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(s.token_logprobs, s.num_tokens).to_vec() } },
                sum: s.sum,
                is_greedy: s.is_greedy != 0,
            })
            .collect();
        unsafe { sys::vlm_score_results_free(out, c_requests.len()) };
        Ok(scores)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        unsafe { sys::vlm_session_free(self.raw) }
    }
}

// ---- metrics ----------------------------------------------------------------------------------------------

/// How METEOR is computed (vlm_meteor_mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeteorMode {
    /// Exact, stem and WordNet synonym stages (needs WordNet 3.0).
    Full,
    /// Exact and stem stages, reported as "meteor_no_wordnet".
    WithoutWordnet,
    Off,
}

/// Metric options; the defaults are the C API's (vlm_metrics_options_init).
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    pub meteor: MeteorMode,
    pub wordnet_dir: Option<String>,
    pub exact_match_ignore_case: bool,
    pub rouge_use_stemmer: bool,
    pub max_new_tokens: i64,
    pub num_threads: i32,
}

impl Default for MetricsOptions {
    fn default() -> MetricsOptions {
        MetricsOptions {
            meteor: MeteorMode::Full,
            wordnet_dir: None,
            exact_match_ignore_case: false,
            rouge_use_stemmer: false,
            max_new_tokens: 0,
            num_threads: 1,
        }
    }
}

/// One prediction with its references.
#[derive(Debug, Clone)]
pub struct MetricsExample<'a> {
    pub prediction: &'a str,
    pub references: Vec<&'a str>,
}

/// Scores of a set of examples; freed on drop.
pub struct MetricsResult {
    raw: *mut sys::vlm_metrics_result,
}

unsafe impl Send for MetricsResult {}

/// Scores predictions against references (exact match, BLEU, METEOR, ROUGE-L, ...).
pub fn score_metrics(examples: &[MetricsExample], options: &MetricsOptions) -> Result<MetricsResult> {
    let mut owned: Vec<(CString, Vec<CString>)> = Vec::with_capacity(examples.len());
    for (i, e) in examples.iter().enumerate() {
        let prediction = c_string(e.prediction, &format!("examples[{}].prediction", i))?;
        let references = e.references.iter().map(|r| c_string(r, &format!("examples[{}].references", i))).collect::<Result<Vec<_>>>()?;
        owned.push((prediction, references));
    }
    let reference_ptrs: Vec<Vec<*const c_char>> = owned.iter().map(|(_, refs)| refs.iter().map(|r| r.as_ptr()).collect()).collect();
    let c_examples: Vec<sys::vlm_metrics_example> = owned
        .iter()
        .zip(&reference_ptrs)
        .map(|((prediction, _), refs)| sys::vlm_metrics_example {
            prediction: prediction.as_ptr(),
            references: if refs.is_empty() { ptr::null() } else { refs.as_ptr() },
            num_references: refs.len(),
            prediction_tokens: -1,
            reference_tokens: ptr::null(),
        })
        .collect();
    let wordnet = options.wordnet_dir.as_deref().map(|d| c_string(d, "wordnet_dir")).transpose()?;
    let mut raw_options = std::mem::MaybeUninit::<sys::vlm_metrics_options>::uninit();
    let mut o = unsafe {
        sys::vlm_metrics_options_init(raw_options.as_mut_ptr());
        raw_options.assume_init()
    };
    o.meteor_mode = match options.meteor {
        MeteorMode::Full => sys::VLM_METEOR_FULL,
        MeteorMode::WithoutWordnet => sys::VLM_METEOR_WITHOUT_WORDNET,
        MeteorMode::Off => sys::VLM_METEOR_OFF,
    };
    o.wordnet_dir = wordnet.as_ref().map_or(ptr::null(), |w| w.as_ptr());
    o.em_ignore_case = options.exact_match_ignore_case as c_int;
    o.rouge_use_stemmer = options.rouge_use_stemmer as c_int;
    o.max_new_tokens = options.max_new_tokens;
    o.num_threads = options.num_threads;
    let mut raw = ptr::null_mut();
    let examples_ptr = if c_examples.is_empty() { ptr::null() } else { c_examples.as_ptr() };
    check(unsafe { sys::vlm_metrics_score(examples_ptr, c_examples.len(), &o, &mut raw) })?;
    Ok(MetricsResult { raw })
}

impl MetricsResult {
    /// One corpus metric ("bleu", "rougeL", ...) and the name of its reference implementation.
    pub fn value(&self, name: &str) -> Result<(f64, String)> {
        let name = c_string(name, "metric name")?;
        let mut value = 0.0;
        let mut implementation: *const c_char = ptr::null();
        check(unsafe { sys::vlm_metrics_result_value(self.raw, name.as_ptr(), &mut value, &mut implementation) })?;
        Ok((value, unsafe { string_from(implementation) }))
    }
    /// The corpus scores as JSON (the content of generation_metrics.json).
    pub fn corpus_json(&self) -> Result<String> {
        let mut out = ptr::null_mut();
        check(unsafe { sys::vlm_metrics_result_corpus_json(self.raw, &mut out) })?;
        Ok(unsafe { take_string(out) })
    }
    /// One example's scores as a JSON object.
    pub fn example_json(&self, index: usize) -> Result<String> {
        let mut out = ptr::null_mut();
        check(unsafe { sys::vlm_metrics_result_example_json(self.raw, index, &mut out) })?;
        Ok(unsafe { take_string(out) })
    }
    pub fn num_examples(&self) -> usize {
        unsafe { sys::vlm_metrics_result_num_examples(self.raw) }
    }
}

impl Drop for MetricsResult {
    fn drop(&mut self) {
        unsafe { sys::vlm_metrics_result_free(self.raw) }
    }
}

// ---- logging ----------------------------------------------------------------------------------------------

/// Log levels (vlm_log_level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Off,
}

impl LogLevel {
    fn raw(self) -> sys::vlm_log_level {
        match self {
            LogLevel::Debug => sys::VLM_LOG_DEBUG,
            LogLevel::Info => sys::VLM_LOG_INFO,
            LogLevel::Warning => sys::VLM_LOG_WARNING,
            LogLevel::Error => sys::VLM_LOG_ERROR,
            LogLevel::Off => sys::VLM_LOG_OFF,
        }
    }
    fn from_raw(level: sys::vlm_log_level) -> LogLevel {
        match level {
            sys::VLM_LOG_DEBUG => LogLevel::Debug,
            sys::VLM_LOG_INFO => LogLevel::Info,
            sys::VLM_LOG_WARNING => LogLevel::Warning,
            sys::VLM_LOG_ERROR => LogLevel::Error,
            _ => LogLevel::Off,
        }
    }
}

type LogFn = Box<dyn Fn(LogLevel, &str) + Send + Sync>;

// The installed closure, boxed twice so that user_data is a thin pointer. Replaced under this lock; the old box
// is dropped only after vlm_set_log_callback returned, when the library guarantees it is no longer called.
static LOG_CALLBACK: Mutex<usize> = Mutex::new(0);

unsafe extern "C" fn log_trampoline(level: sys::vlm_log_level, line: *const c_char, user_data: *mut c_void) {
    let callback = &*(user_data as *const LogFn);
    let line = string_from(line);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(LogLevel::from_raw(level), &line)));
}

/// Installs `callback` for the library's log lines (None removes it). The callback receives whole lines and is
/// never called from two threads at once.
pub fn set_log_callback(callback: Option<LogFn>) {
    let mut current = LOG_CALLBACK.lock().unwrap_or_else(|e| e.into_inner());
    let new_ptr = callback.map_or(0usize, |c| Box::into_raw(Box::new(c)) as usize);
    unsafe {
        if new_ptr == 0 {
            sys::vlm_set_log_callback(None, ptr::null_mut());
        } else {
            sys::vlm_set_log_callback(Some(log_trampoline), new_ptr as *mut c_void);
        }
    }
    let old = std::mem::replace(&mut *current, new_ptr);
    if old != 0 {
        drop(unsafe { Box::from_raw(old as *mut LogFn) });
    }
}

/// Lines below `level` are dropped.
pub fn set_log_level(level: LogLevel) -> Result<()> {
    check(unsafe { sys::vlm_set_log_level(level.raw()) })
}

pub fn log_level() -> LogLevel {
    LogLevel::from_raw(unsafe { sys::vlm_get_log_level() })
}
