//! Raw declarations of include/vlmrt.h (a vlmrt-sys layer written by hand; keep in step with the header).
//! Every struct is `#[repr(C)]` with the header's field order; enums are passed as `c_int`.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

pub type vlm_status = c_int;
pub const VLM_OK: vlm_status = 0;
pub const VLM_ERR_INVALID_ARGUMENT: vlm_status = 1;
pub const VLM_ERR_NOT_FOUND: vlm_status = 2;
pub const VLM_ERR_IO: vlm_status = 3;
pub const VLM_ERR_CORRUPT_DATA: vlm_status = 4;
pub const VLM_ERR_UNSUPPORTED: vlm_status = 5;
pub const VLM_ERR_LIMIT_EXCEEDED: vlm_status = 6;
pub const VLM_ERR_CANCELLED: vlm_status = 7;
pub const VLM_ERR_OUT_OF_MEMORY: vlm_status = 8;
pub const VLM_ERR_INTERNAL: vlm_status = 9;

pub type vlm_log_level = c_int;
pub const VLM_LOG_DEBUG: vlm_log_level = 10;
pub const VLM_LOG_INFO: vlm_log_level = 20;
pub const VLM_LOG_WARNING: vlm_log_level = 30;
pub const VLM_LOG_ERROR: vlm_log_level = 40;
pub const VLM_LOG_OFF: vlm_log_level = 100;

pub const VLM_METEOR_FULL: c_int = 0;
pub const VLM_METEOR_WITHOUT_WORDNET: c_int = 1;
pub const VLM_METEOR_OFF: c_int = 2;

#[repr(C)]
pub struct vlm_checkpoint {
    _private: [u8; 0],
}
#[repr(C)]
pub struct vlm_session {
    _private: [u8; 0],
}
#[repr(C)]
pub struct vlm_metrics_result {
    _private: [u8; 0],
}

#[repr(C)]
pub struct vlm_tensor_info {
    pub name: *const c_char,
    pub dtype: *const c_char,
    pub ndim: usize,
    pub shape: *const i64,
    pub nbytes: u64,
}

#[repr(C)]
pub struct vlm_image {
    pub width: u32,
    pub height: u32,
    pub pixels: *mut u8,
}

#[repr(C)]
pub struct vlm_image_load_options {
    pub struct_size: usize,
    pub max_pixels: u64,
    pub apply_exif_orientation: c_int,
}

#[repr(C)]
pub struct vlm_session_options {
    pub struct_size: usize,
    pub model: *const c_char,
    pub device: *const c_char,
    pub dtype: *const c_char,
    pub min_pixels: u64,
    pub max_pixels: u64,
    pub num_threads: c_int,
    pub coded_weights: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct vlm_prompt {
    pub text: *const c_char,
    pub system_message: *const c_char,
    pub image_paths: *const *const c_char,
    pub num_images: usize,
}

pub type vlm_token_callback = Option<unsafe extern "C" fn(prompt_index: usize, token: i64, user_data: *mut c_void) -> c_int>;

#[repr(C)]
pub struct vlm_generation_options {
    pub struct_size: usize,
    pub max_new_tokens: c_int,
    pub min_new_tokens: c_int,
    pub num_beams: c_int,
    pub top_k: c_int,
    pub temperature: f64,
    pub top_p: f64,
    pub repetition_penalty: f64,
    pub length_penalty: f64,
    pub do_sample: c_int,
    pub seed: u64,
    pub on_token: vlm_token_callback,
    pub user_data: *mut c_void,
}

#[repr(C)]
pub struct vlm_generation {
    pub text: *mut c_char,
    pub tokens: *mut i64,
    pub num_tokens: usize,
    pub finish_reason: *const c_char,
}

#[repr(C)]
pub struct vlm_score_request {
    pub prompt: vlm_prompt,
    pub continuation: *const c_char,
}

#[repr(C)]
pub struct vlm_score_result {
    pub token_logprobs: *mut f64,
    pub num_tokens: usize,
    pub sum: f64,
    pub is_greedy: c_int,
}

pub type vlm_count_tokens_fn = Option<unsafe extern "C" fn(text: *const c_char, length: usize, user_data: *mut c_void) -> i64>;

#[repr(C)]
pub struct vlm_metrics_options {
    pub struct_size: usize,
    pub em_regexes_to_ignore: *const *const c_char,
    pub em_num_regexes_to_ignore: usize,
    pub em_ignore_case: c_int,
    pub em_ignore_punctuation: c_int,
    pub em_ignore_numbers: c_int,
    pub rouge_use_stemmer: c_int,
    pub meteor_mode: c_int,
    pub wordnet_dir: *const c_char,
    pub meteor_alpha: f64,
    pub meteor_beta: f64,
    pub meteor_gamma: f64,
    pub meteor_preserve_line: c_int,
    pub max_new_tokens: i64,
    pub count_tokens: vlm_count_tokens_fn,
    pub count_tokens_user_data: *mut c_void,
    pub num_threads: c_int,
    pub per_example: c_int,
}

#[repr(C)]
pub struct vlm_metrics_example {
    pub prediction: *const c_char,
    pub references: *const *const c_char,
    pub num_references: usize,
    pub prediction_tokens: i64,
    pub reference_tokens: *const i64,
}

pub type vlm_log_callback = Option<unsafe extern "C" fn(level: vlm_log_level, line: *const c_char, user_data: *mut c_void)>;

extern "C" {
    pub fn vlm_last_error() -> *const c_char;
    pub fn vlm_status_name(status: vlm_status) -> *const c_char;
    pub fn vlm_version() -> *const c_char;
    pub fn vlm_version_number() -> c_int;
    pub fn vlm_abi_version() -> c_int;
    pub fn vlm_string_free(s: *mut c_char);

    pub fn vlm_model_locate(model: *const c_char, out_path: *mut *mut c_char) -> vlm_status;
    pub fn vlm_checkpoint_open(path: *const c_char, out: *mut *mut vlm_checkpoint) -> vlm_status;
    pub fn vlm_checkpoint_tensor_count(checkpoint: *const vlm_checkpoint) -> usize;
    pub fn vlm_checkpoint_tensor_info(checkpoint: *mut vlm_checkpoint, index: usize, out: *mut vlm_tensor_info) -> vlm_status;
    pub fn vlm_checkpoint_free(checkpoint: *mut vlm_checkpoint);

    pub fn vlm_image_load_options_init(options: *mut vlm_image_load_options);
    pub fn vlm_image_load(path: *const c_char, options: *const vlm_image_load_options, out: *mut *mut vlm_image) -> vlm_status;
    pub fn vlm_image_decode(
        data: *const c_void,
        size: usize,
        options: *const vlm_image_load_options,
        out: *mut *mut vlm_image,
    ) -> vlm_status;
    pub fn vlm_image_free(image: *mut vlm_image);

    pub fn vlm_session_options_init(options: *mut vlm_session_options);
    pub fn vlm_session_create(options: *const vlm_session_options, out: *mut *mut vlm_session) -> vlm_status;
    pub fn vlm_session_free(session: *mut vlm_session);
    pub fn vlm_session_cancel(session: *mut vlm_session);
    pub fn vlm_generation_options_init(options: *mut vlm_generation_options);
    pub fn vlm_generate(
        session: *mut vlm_session,
        prompts: *const vlm_prompt,
        num_prompts: usize,
        options: *const vlm_generation_options,
        out: *mut *mut vlm_generation,
    ) -> vlm_status;
    pub fn vlm_generations_free(results: *mut vlm_generation, num_results: usize);
    pub fn vlm_score(
        session: *mut vlm_session,
        requests: *const vlm_score_request,
        num_requests: usize,
        out: *mut *mut vlm_score_result,
    ) -> vlm_status;
    pub fn vlm_score_results_free(results: *mut vlm_score_result, num_results: usize);

    pub fn vlm_metrics_options_init(options: *mut vlm_metrics_options);
    pub fn vlm_metrics_score(
        examples: *const vlm_metrics_example,
        num_examples: usize,
        options: *const vlm_metrics_options,
        out: *mut *mut vlm_metrics_result,
    ) -> vlm_status;
    pub fn vlm_metrics_result_free(result: *mut vlm_metrics_result);
    pub fn vlm_metrics_result_corpus_json(result: *const vlm_metrics_result, out: *mut *mut c_char) -> vlm_status;
    pub fn vlm_metrics_result_example_json(result: *const vlm_metrics_result, index: usize, out: *mut *mut c_char) -> vlm_status;
    pub fn vlm_metrics_result_value(
        result: *const vlm_metrics_result,
        name: *const c_char,
        out_value: *mut f64,
        out_implementation: *mut *const c_char,
    ) -> vlm_status;
    pub fn vlm_metrics_result_num_examples(result: *const vlm_metrics_result) -> usize;

    pub fn vlm_set_log_callback(callback: vlm_log_callback, user_data: *mut c_void);
    pub fn vlm_set_log_level(level: vlm_log_level) -> vlm_status;
    pub fn vlm_get_log_level() -> vlm_log_level;
    pub fn vlm_log_level_name(level: vlm_log_level) -> *const c_char;
}
