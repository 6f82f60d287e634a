/*
** vlmrt: fine-tune and evaluate Hugging Face vision-language models with LoRA, natively.
**
** This is the whole public interface: a plain C99 header over the C++ runtime in libvlmrt.
**
** CONVENTIONS
**
**   Status codes. Every function that can fail returns a vlm_status. VLM_OK (0) means success; any other
**   value is an error category, and vlm_last_error() returns the message of the most recent failed call
**   made on the calling thread. A message names what was wrong (the file, key, row or argument) and how to
**   fix it. On failure, output parameters are left untouched.
**
**   Options structs. Every options struct starts with a `size_t struct_size` field. Fill it by calling the
**   struct's init function (vlm_xxx_options_init), which sets struct_size and every default; then change
**   the fields you need. A struct_size the library does not know is rejected with VLM_ERR_INVALID_ARGUMENT,
**   so programs built against an older header keep working when fields are added at the end.
**
**   Memory. Every object or buffer the library returns has a matching free function, and every free
**   function accepts NULL. Strings are NUL-terminated UTF-8. Sizes and counts are size_t.
**
**   Exceptions. No C++ exception and no abort ever crosses this interface: internal failures are reported
**   as VLM_ERR_INTERNAL with a message.
**
**   Threads. Functions that take no handle are safe to call from any thread at any time. A handle may be
**   used by one thread at a time unless its declaration says more (a vlm_checkpoint may be read from several
**   threads; vlm_session_cancel may be called from any thread); different handles may be used from
**   different threads at once. Free a handle once, from one thread, when no other call on it is running.
**   Callbacks (token streaming, token counting, progress) run on the thread that made the call, or on the
**   library's worker threads where their declaration says so; the log callback's rules are in its section.
**   The error message returned by vlm_last_error() is per thread and stays valid until the next vlm_* call
**   on that thread.
**
**   Testing. When the environment variable VLMRT_FAULT_INJECT is set to "FUNCTION[:KIND]" (FUNCTION a vlm_*
**   name or "*", KIND one of error, bad_alloc, std, unknown; default std), every matching entry point that
**   returns a vlm_status throws the corresponding C++ exception inside the library before doing anything,
**   which must come back as a status and a message naming the function. It exists for the test suite; never
**   set it in production.
**
** VERSIONS
**
**   VLMRT_VERSION_* give the version of this header; vlm_version() the version of the library loaded at run
**   time. VLMRT_ABI_VERSION is the shared library's SOVERSION: it changes only when the binary interface
**   breaks.
*/
#ifndef VLMRT_H
#define VLMRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VLM_API __attribute__((visibility("default")))
#else
#define VLM_API
#endif

#define VLMRT_VERSION_MAJOR 0
#define VLMRT_VERSION_MINOR 1
#define VLMRT_VERSION_PATCH 0
#define VLMRT_VERSION_STRING "0.1.0"
#define VLMRT_ABI_VERSION 0

/* ------------------------------------------------------------------------------------------------------ */
/* Status codes and errors                                                                                */
/* ------------------------------------------------------------------------------------------------------ */

typedef enum vlm_status {
  VLM_OK = 0,
  VLM_ERR_INVALID_ARGUMENT = 1, /* a NULL handle, a bad option value, an unknown struct_size */
  VLM_ERR_NOT_FOUND = 2,        /* a file, model, key or tensor that does not exist */
  VLM_ERR_IO = 3,               /* the operating system refused a read or a write */
  VLM_ERR_CORRUPT_DATA = 4,     /* a file whose content is malformed or truncated */
  VLM_ERR_UNSUPPORTED = 5,      /* valid input this build cannot handle (format, dtype, construct) */
  VLM_ERR_LIMIT_EXCEEDED = 6,   /* input larger than a configured safety limit */
  VLM_ERR_CANCELLED = 7,        /* the caller asked to stop */
  VLM_ERR_OUT_OF_MEMORY = 8,
  VLM_ERR_INTERNAL = 9          /* a bug in vlmrt; the message says where */
} vlm_status;

/* The message of the most recent failed call on this thread, or "" if the last call succeeded.
** Valid until the next vlm_* call on the same thread. Never NULL. */
VLM_API const char *vlm_last_error(void);

/* A constant English name for a status code ("not found"). Never NULL. */
VLM_API const char *vlm_status_name(vlm_status status);

/* ------------------------------------------------------------------------------------------------------ */
/* Versions                                                                                               */
/* ------------------------------------------------------------------------------------------------------ */

/* The library's version as "MAJOR.MINOR.PATCH" (a constant string). */
VLM_API const char *vlm_version(void);
/* The library's version as MAJOR*10000 + MINOR*100 + PATCH. */
VLM_API int vlm_version_number(void);
/* The library's ABI version (its SOVERSION); equals VLMRT_ABI_VERSION of a compatible header. */
VLM_API int vlm_abi_version(void);

/* Frees a string the library returned. Accepts NULL. */
VLM_API void vlm_string_free(char *str);

/* ------------------------------------------------------------------------------------------------------ */
/* Models on disk                                                                                         */
/* ------------------------------------------------------------------------------------------------------ */

/* Resolves a model reference to a local folder, without any network access.
**   `model` is a local folder, or a Hugging Face repository id ("Qwen/Qwen2-VL-2B-Instruct", optionally
**   followed by "@<revision>", a branch, tag or commit hash) looked up in the Hugging Face cache:
**   $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
** On success *out_path receives the folder (free it with vlm_string_free). When nothing is found the
** message lists every place searched. */
VLM_API vlm_status vlm_model_locate(const char *model, char **out_path);

/* A safetensors checkpoint (one file, or shards listed by an index), opened read-only for inspection.
** Thread rules: a vlm_checkpoint may be read from several threads at once; free it from one thread once. */
typedef struct vlm_checkpoint vlm_checkpoint;

/* Describes one tensor. The strings and the shape array belong to the checkpoint and stay valid until
** vlm_checkpoint_free. */
typedef struct vlm_tensor_info {
  const char *name;     /* the checkpoint key, e.g. "model.layers.0.self_attn.q_proj.weight" */
  const char *dtype;    /* the safetensors dtype name: "F32", "BF16", "I64", ... */
  size_t ndim;
  const int64_t *shape; /* ndim sizes */
  uint64_t nbytes;
} vlm_tensor_info;

/* Opens `path`: a folder holding model.safetensors or model.safetensors.index.json (or, when those are
** absent, adapter_model.safetensors), a .safetensors file, or an index .json file. The whole header is
** validated; a malformed file fails with VLM_ERR_CORRUPT_DATA naming the file and tensor, and a pickle
** checkpoint (pytorch_model.bin) with VLM_ERR_UNSUPPORTED explaining how to convert it. */
VLM_API vlm_status vlm_checkpoint_open(const char *path, vlm_checkpoint **out_checkpoint);
/* The number of tensors (0 for NULL). Tensors are ordered by name. */
VLM_API size_t vlm_checkpoint_tensor_count(const vlm_checkpoint *checkpoint);
/* Fills *out_info for tensor `index` (0 <= index < count). Opens the tensor's shard if needed. */
VLM_API vlm_status vlm_checkpoint_tensor_info(vlm_checkpoint *checkpoint, size_t index, vlm_tensor_info *out_info);
VLM_API void vlm_checkpoint_free(vlm_checkpoint *checkpoint);

/* ------------------------------------------------------------------------------------------------------ */
/* Images                                                                                                 */
/* ------------------------------------------------------------------------------------------------------ */

/* An 8-bit RGB image, rows top to bottom, pixels left to right, 3 bytes per pixel, no row padding. */
typedef struct vlm_image {
  uint32_t width;
  uint32_t height;
  uint8_t *pixels; /* width * height * 3 bytes */
} vlm_image;

typedef struct vlm_image_load_options {
  size_t struct_size;
  /* Images with more pixels than this are refused before decoding (decompression-bomb guard).
  ** Default: 178956970, the limit at which Pillow refuses an image. 0 means no limit. */
  uint64_t max_pixels;
  /* Apply the EXIF orientation tag, as Hugging Face's load_image does. Default: 1. */
  int apply_exif_orientation;
} vlm_image_load_options;

VLM_API void vlm_image_load_options_init(vlm_image_load_options *options);

/* Decodes a PNG or JPEG file into RGB exactly as Pillow's Image.open(path) followed by
** ImageOps.exif_transpose and convert("RGB") does. `options` may be NULL for the defaults.
** On success *out_image receives a new image (free it with vlm_image_free). */
VLM_API vlm_status vlm_image_load(const char *path, const vlm_image_load_options *options, vlm_image **out_image);
/* Same, from bytes in memory. */
VLM_API vlm_status vlm_image_decode(const void *data, size_t size, const vlm_image_load_options *options,
                                    vlm_image **out_image);
VLM_API void vlm_image_free(vlm_image *image);

/* ------------------------------------------------------------------------------------------------------ */
/* Sessions: a loaded model with its tokenizer, chat template and image processor                         */
/* ------------------------------------------------------------------------------------------------------ */

/* A session owns one loaded checkpoint. Thread rules: calls on one session are serialised by the caller
** (one call at a time); different sessions may be used from different threads at once; vlm_session_cancel
** may be called from any thread at any time. Supported families for generation in this version: Qwen2-VL,
** Qwen2.5-VL, LLaVA-1.5, and Qwen2 / Llama-style text-only causal LMs.
**
** Process-wide settings: the first model loaded in a process sets libtorch's intra-op thread count to the CPUs
** the process may use (the environment variable VLMRT_NUM_THREADS overrides; with OMP_NUM_THREADS set, libtorch's
** own choice stands), and with glibc has malloc keep blocks up to 32 MB on its heap instead of mapping and
** unmapping them per tensor (M_MMAP_THRESHOLD 32 MB, M_TRIM_THRESHOLD 256 MB; about 20 % off a bfloat16 prefill's time).
** Malloc settings of the environment (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, glibc.malloc.* in
** GLIBC_TUNABLES) stand, and VLMRT_MALLOC_TUNING=0 leaves malloc as it is.
**
** A bfloat16 session on a CPU with AVX2 or AVX-512 also keeps a 12-bit coded copy of the language model's projection
** weights, which decode steps read instead of the weights: a quarter fewer bytes per generated token, the same
** results bit for bit, and 3/4 of those weights' size in extra memory (made at vlm_session_create, under a second
** for a 0.5B-parameter language model). Only decode steps of at most 4 rows (batch size x beams; 8 on CPUs without
** AVX-512) read them, so vlm_evaluate_run and vlm_pipeline_run make none for larger evaluation batches, and
** vlm_session_options.coded_weights = -1 leaves them out of a session. VLMRT_CODED_WEIGHTS=0 in the
** environment turns this off. */
typedef struct vlm_session vlm_session;

typedef struct vlm_session_options {
  size_t struct_size;
  /* A model folder, or a Hugging Face id ("Org/Name[@revision]") in the offline cache. Required. */
  const char *model;
  /* "cpu" (default), "cuda" or "cuda:N". */
  const char *device;
  /* "float32" (default), "bfloat16" or "float16". */
  const char *dtype;
  /* Qwen2-VL pixel budget per image; 0 keeps preprocessor_config.json's value. min = max = 224*224 is the
  ** fixed 224x224 mode. */
  uint64_t min_pixels;
  uint64_t max_pixels;
  /* Threads for image preprocessing; 0 uses every available CPU. */
  int num_threads;
  /* The 12-bit coded weight copies described above: 0 (default) makes them where the CPU's decode kernel reads
  ** them, -1 makes none. Set -1 for a session that always decodes more rows at a time than the copies serve
  ** (see above), whose decode steps would not read them, or to keep their memory. Any other value is rejected.
  ** A program built against a header without this field passes that header's struct_size, which is accepted:
  ** the default applies (on 64-bit platforms the field took the struct's former tail padding, which the earlier
  ** vlm_session_options_init zeroed, so the size is the same). */
  int coded_weights;
} vlm_session_options;

VLM_API void vlm_session_options_init(vlm_session_options *options);
VLM_API vlm_status vlm_session_create(const vlm_session_options *options, vlm_session **out_session);
/* Frees the session. Accepts NULL. */
VLM_API void vlm_session_free(vlm_session *session);
/* Asks a running vlm_generate on `session` to stop after the current step; its results are then marked
** "cancelled". Safe from any thread. Clears itself when the next vlm_generate starts. */
VLM_API void vlm_session_cancel(vlm_session *session);

/* One prompt: a user message (text plus images, the images placed before the text) and an optional system
** message, formatted with the checkpoint's chat template. */
typedef struct vlm_prompt {
  const char *text;
  const char *system_message;     /* NULL: the template's default */
  const char *const *image_paths; /* PNG or JPEG files */
  size_t num_images;
} vlm_prompt;

/* Called for every new token of every prompt (greedy and sampling; for beam search once per token of the
** final sequences). Return 0 to stop generating. */
typedef int (*vlm_token_callback)(size_t prompt_index, int64_t token, void *user_data);

typedef struct vlm_generation_options {
  size_t struct_size;
  /* Negative or zero values mean "unset": the checkpoint's generation_config.json, then transformers'
  ** defaults, apply. */
  int max_new_tokens;
  int min_new_tokens;
  int num_beams;
  int top_k;
  double temperature;
  double top_p;
  double repetition_penalty;
  double length_penalty;
  /* -1 unset, 0 greedy/beam search, 1 sampling. */
  int do_sample;
  uint64_t seed;
  vlm_token_callback on_token;
  void *user_data;
} vlm_generation_options;

VLM_API void vlm_generation_options_init(vlm_generation_options *options);

typedef struct vlm_generation {
  char *text;            /* decoded with special tokens skipped */
  int64_t *tokens;       /* the generated token ids, the EOS token included when one ended the text */
  size_t num_tokens;
  const char *finish_reason; /* "eos", "length", "stop_string" or "cancelled" (a constant string) */
} vlm_generation;

/* Generates a continuation for each of `num_prompts` prompts, batched. On success *out_results receives an
** array of num_prompts results (free it with vlm_generations_free). `options` may be NULL. */
VLM_API vlm_status vlm_generate(vlm_session *session, const vlm_prompt *prompts, size_t num_prompts,
                                const vlm_generation_options *options, vlm_generation **out_results);
VLM_API void vlm_generations_free(vlm_generation *results, size_t num_results);

/* Log-likelihood of a continuation, for evaluation harnesses (lm-evaluation-harness "loglikelihood"): the prompt is
** formatted as for vlm_generate (chat template with the assistant turn opened); `continuation` is tokenized on its
** own, without special tokens, and appended. */
typedef struct vlm_score_request {
  vlm_prompt prompt;
  const char *continuation; /* must produce at least one token */
} vlm_score_request;

typedef struct vlm_score_result {
  double *token_logprobs; /* log p(token i | prompt, tokens before i), one per continuation token */
  size_t num_tokens;
  double sum;             /* the sum of token_logprobs */
  int is_greedy;          /* 1 when every continuation token is the most likely one at its position */
} vlm_score_result;

/* Scores `num_requests` requests (one forward pass each). On success *out_results receives num_requests
** results (free them with vlm_score_results_free). */
VLM_API vlm_status vlm_score(vlm_session *session, const vlm_score_request *requests, size_t num_requests,
                             vlm_score_result **out_results);
VLM_API void vlm_score_results_free(vlm_score_result *results, size_t num_results);

/* ---- Metrics (see the metrics section below) ---------------------------------------------------------- */
/* VLM_METRICS_API_BEGIN */
/* ------------------------------------------------------------------------------------------------------ */
/* Evaluation metrics                                                                                     */
/* ------------------------------------------------------------------------------------------------------ */

/* Scores predictions against references with metrics equal to named reference implementations:
**   exact_match             HF evaluate 'exact_match' (best over an example's references, mean, 0-1)
**   exact_match_normalized  the same on ' '.join(text.split()) of both sides
**   bleu                    sacrebleu 2.6.0 corpus_bleu (13a tokenizer, exp smoothing, 0-100): the headline number
**   sentence_bleu           sacrebleu 2.6.0 sentence_bleu per example, mean
**   meteor                  nltk 3.10.4 meteor_score with HF evaluate's settings, WordNet 3.0 synonyms, over nltk
**                           word_tokenize tokens (Punkt, English punkt_tab parameters), mean ("meteor_no_wordnet"
**                           when WordNet is switched off explicitly)
**   rougeL, rougeLsum       rouge_score 0.1.2 F-measure, best over references, plain mean (no bootstrap)
** plus token statistics. Every corpus value carries the name of its reference implementation. */

typedef enum vlm_meteor_mode {
  VLM_METEOR_FULL = 0,            /* exact, Porter stem and WordNet synonym stages; fails if WordNet is missing */
  VLM_METEOR_WITHOUT_WORDNET = 1, /* exact and stem stages only, reported as "meteor_no_wordnet" */
  VLM_METEOR_OFF = 2
} vlm_meteor_mode;

/* Counts the model tokenizer's tokens of `text` (`length` bytes of UTF-8); returns -1 when it cannot.
** Called from several threads at once when num_threads is not 1. */
typedef int64_t (*vlm_count_tokens_fn)(const char *text, size_t length, void *user_data);

typedef struct vlm_metrics_options {
  size_t struct_size;
  /* HF exact_match options. Each regex (PCRE2 syntax, Unicode classes) is deleted from both sides in turn. */
  const char *const *em_regexes_to_ignore;
  size_t em_num_regexes_to_ignore;
  int em_ignore_case;        /* default 0 */
  int em_ignore_punctuation; /* ASCII punctuation; default 0 */
  int em_ignore_numbers;     /* ASCII digits; default 0 */
  int rouge_use_stemmer;     /* default 0 (HF evaluate's default) */
  int meteor_mode;           /* a vlm_meteor_mode; default VLM_METEOR_FULL */
  const char *wordnet_dir;   /* WordNet 3.0 database; NULL = "/usr/share/wordnet" (Debian's wordnet-base) */
  double meteor_alpha;       /* default 0.9 */
  double meteor_beta;        /* default 3.0 */
  double meteor_gamma;       /* default 0.5 */
  /* 1: tokenize with word_tokenize(text, preserve_line=True) (no Punkt sentence split); default 0, which is
  ** word_tokenize(text) as HF evaluate calls it. */
  int meteor_preserve_line;
  /* A prediction counts as truncated when its token count is >= max_new_tokens; 0 = unknown (no share). */
  int64_t max_new_tokens;
  /* Optional: counts tokens the examples do not give. NULL = none. */
  vlm_count_tokens_fn count_tokens;
  void *count_tokens_user_data;
  int num_threads;           /* examples scored in parallel; 0 = one per hardware thread; default 1 */
  int per_example;           /* keep per-example scores (vlm_metrics_result_example_json); default 1 */
} vlm_metrics_options;

VLM_API void vlm_metrics_options_init(vlm_metrics_options *options);

typedef struct vlm_metrics_example {
  const char *prediction;        /* UTF-8 */
  const char *const *references; /* at least one, UTF-8 */
  size_t num_references;
  int64_t prediction_tokens;     /* tokens generated for the prediction; -1 = unknown */
  const int64_t *reference_tokens; /* NULL, or num_references counts (-1 = unknown) */
} vlm_metrics_example;

typedef struct vlm_metrics_result vlm_metrics_result;

/* Scores `num_examples` examples. `options` may be NULL for the defaults. On success *out_result receives a
** result to free with vlm_metrics_result_free. */
VLM_API vlm_status vlm_metrics_score(const vlm_metrics_example *examples, size_t num_examples,
                                     const vlm_metrics_options *options, vlm_metrics_result **out_result);
VLM_API void vlm_metrics_result_free(vlm_metrics_result *result);

/* The corpus scores as a JSON document (the content of generation_metrics.json): "metrics" maps each name to
** {"value", "implementation"}, plus "bleu_details" and "token_statistics". Free with vlm_string_free. */
VLM_API vlm_status vlm_metrics_result_corpus_json(const vlm_metrics_result *result, char **out_json);
/* One example's scores as a JSON object (for predictions.jsonl). Needs options->per_example. */
VLM_API vlm_status vlm_metrics_result_example_json(const vlm_metrics_result *result, size_t index, char **out_json);
/* One corpus metric by name ("bleu", "meteor", ...). *out_implementation (may be NULL) receives a string owned
** by the result. VLM_ERR_NOT_FOUND for a metric the result does not have. */
VLM_API vlm_status vlm_metrics_result_value(const vlm_metrics_result *result, const char *name, double *out_value,
                                            const char **out_implementation);
VLM_API size_t vlm_metrics_result_num_examples(const vlm_metrics_result *result);
/* VLM_METRICS_API_END */

/* VLM_TRAIN_API_BEGIN */
/* ---------------------------------------------------------------------------------------------------------------
** LoRA training, step by step
**
** A trainer attaches LoRA adapters (PEFT semantics and file format) to a session's model and runs one optimizer
** update per vlm_train_step call on the examples given: they form one gradient-accumulation window whose loss is the
** sum of token cross-entropies over the response tokens divided by the window's number of predicted tokens, as
** transformers' Trainer computes it. While a trainer exists, vlm_generate and vlm_score on its session run with the
** adapters (so a host can evaluate between steps); vlm_trainer_free removes them again (unless they were merged).
**
** Threads: a trainer belongs to its session; do not use the session from another thread during a step. One trainer
** per session at a time. For whole runs from a CSV with checkpoints and resume, see vlm_pipeline_run.
*/
typedef struct vlm_trainer vlm_trainer;

typedef struct vlm_train_options {
  size_t struct_size;
  /* LoRA. Defaults: r 8, alpha 8, dropout 0. */
  int r;
  double alpha;
  double dropout;
  /* Target modules: names matched as a module path's last components ("q_proj", "self_attn.o_proj"), or the
  ** single entry "all-linear". NULL / 0 entries: the family default, the language model's q_proj and v_proj. */
  const char *const *target_modules;
  size_t num_target_modules;
  /* Alternatively a regular expression the whole module path must match (overrides target_modules). */
  const char *target_regex;
  int use_rslora;  /* scaling alpha / sqrt(r) instead of alpha / r */
  int use_dora;    /* weight-decomposed LoRA */
  /* Allow adapters in the vision tower / projector (frozen by default). */
  int train_vision_tower;
  int train_projector;
  /* Start from this PEFT adapter folder instead of fresh adapters (its adapter_config.json decides the LoRA
  ** settings above). NULL: fresh adapters (Kaiming-uniform A, zero B, drawn after seeding with `seed`). */
  const char *init_adapter;
  /* AdamW. Defaults: learning_rate 5e-5, weight_decay 0, betas 0.9 / 0.999, epsilon 1e-8. */
  double learning_rate;
  double weight_decay;
  double adam_beta1;
  double adam_beta2;
  double adam_epsilon;
  /* Schedule: "constant" (default), "constant_with_warmup", "linear" or "cosine"; linear and cosine need
  ** total_steps. */
  const char *lr_scheduler_type;
  int64_t warmup_steps;
  int64_t total_steps;
  /* Gradient clipping by global norm; <= 0 disables it. Default 1.0. */
  double max_grad_norm;
  /* "no" (default), "bf16" (autocast, CPU and CUDA) or "fp16" (CUDA only). */
  const char *mixed_precision;
  int gradient_checkpointing;
  /* Loss on the response tokens only (default 1) or on the whole sequence (0). */
  int loss_on_response_only;
  /* Truncate examples to this many tokens (never inside an image); 0: no limit. */
  int max_seq_length;
  /* Examples per forward pass within a step; 0: all examples of the step at once. */
  int micro_batch_size;
  uint64_t seed; /* default 42 */
} vlm_train_options;

VLM_API void vlm_train_options_init(vlm_train_options *options);

/* Attaches adapters to the session's model. Fails with VLM_ERR_INVALID_ARGUMENT when a target matches no
** module (the message lists what module paths look like) or only modules of a frozen part. */
VLM_API vlm_status vlm_trainer_create(vlm_session *session, const vlm_train_options *options, vlm_trainer **out_trainer);
/* Removes the adapters from the model (when not merged) and frees the trainer. NULL is allowed. */
VLM_API void vlm_trainer_free(vlm_trainer *trainer);

/* One training example: an instruction, the response to learn, and optionally one image given either as a file
** path or as an RGB8 buffer (width * height pixels, `stride` bytes per row; 0 means width * 3). */
typedef struct vlm_train_example {
  const char *instruction;
  const char *response;
  const char *image_path;
  const uint8_t *rgb;
  uint32_t width;
  uint32_t height;
  size_t stride;
} vlm_train_example;

typedef struct vlm_train_step_result {
  double loss;           /* the window's loss (before the update) */
  double grad_norm;      /* global gradient norm before clipping */
  double learning_rate;  /* the rate this update used */
  int64_t step;          /* updates done, this one included */
  int64_t num_predicted_tokens;
} vlm_train_step_result;

/* One optimizer update on `num_examples` examples. On failure nothing is updated and *out_result is untouched.
** With mixed_precision "fp16" (CUDA), an update whose gradients overflow is skipped as torch's GradScaler skips
** it: the call succeeds with grad_norm NaN and step unchanged, and the loss scale halves. */
VLM_API vlm_status vlm_train_step(vlm_trainer *trainer, const vlm_train_example *examples, size_t num_examples,
                                  vlm_train_step_result *out_result);
/* Writes adapter_config.json + adapter_model.safetensors (PEFT format: PeftModel.from_pretrained loads it). */
VLM_API vlm_status vlm_trainer_save_adapter(vlm_trainer *trainer, const char *folder);
/* Saves / restores the adapter, the optimizer moments, the step count and the RNG state; a restored trainer
** continues bit for bit where the saved one stood (on the CPU). The trainer must have the same LoRA settings. */
VLM_API vlm_status vlm_trainer_save_state(vlm_trainer *trainer, const char *folder);
VLM_API vlm_status vlm_trainer_load_state(vlm_trainer *trainer, const char *folder);
/* Folds the adapters into the model and writes the merged model in the Hugging Face format (config.json,
** safetensors, tokenizer and processor files). Afterwards the session generates with the merged weights and
** the trainer accepts no further step. */
VLM_API vlm_status vlm_trainer_export_merged(vlm_trainer *trainer, const char *folder);
/* Trainable and total parameter counts (as PEFT's print_trainable_parameters). Either pointer may be NULL. */
VLM_API vlm_status vlm_trainer_parameter_counts(const vlm_trainer *trainer, int64_t *out_trainable, int64_t *out_total);

/* Attaches a PEFT LoRA adapter folder to a session's model for generation and scoring (adapters loaded one after
** another add up). Keys in either transformers layout are accepted; a file whose keys match no module fails. */
VLM_API vlm_status vlm_session_load_adapter(vlm_session *session, const char *adapter_folder);
/* VLM_TRAIN_API_END */

/* VLM_PIPELINE_API_BEGIN */
/* ---- vlm_evaluate (owner: pipeline-data) ---- */
/* ------------------------------------------------------------------------------------------------------ */
/* Evaluation on a CSV file                                                                               */
/* ------------------------------------------------------------------------------------------------------ */

/* Evaluates a model (plus LoRA adapters) on the rows of a CSV file and writes, atomically, into output_dir:
**   predictions.jsonl        one JSON object per row: "index" (0-based data row), "csv_line", "image", "query",
**                            "prediction", "reference", "finish_reason", "scores" (that row's metrics, as
**                            vlm_metrics_result_example_json)
**   generation_metrics.json  the corpus metrics as vlm_metrics_result_corpus_json ("num_examples", "metrics" with
**                            each value's reference implementation, "bleu_details", "token_statistics") plus
**                            "evaluation": what was evaluated (model, adapters, CSV, options, runtime)
** CSV columns: the image (default "url": a path relative to the CSV's folder, an absolute path, a file:// URL or an
** http(s):// URL, downloaded into a content-addressed cache), the query (default "query", else "instruction") and
** the reference answer (default "annotation", else "response"). Each row becomes one user message: the image, then
** prompt_template with every "{query}" replaced by the row's query; system_message, when set, comes first.
** Every row is checked and every image loaded before anything is generated: a bad row (empty image or reference
** cell, an image that is missing, unreadable or not PNG/JPEG) fails with a message naming the CSV file, the data
** row and its line, and nothing is written. A stop through on_progress returns VLM_ERR_CANCELLED and writes
** nothing. */

/* Called after each batch with the rows done so far and the total; return 0 to stop. */
typedef int (*vlm_evaluate_progress_fn)(int64_t done, int64_t total, void *user_data);
/* Receives one line (no newline) about the evaluation's progress; valid during the call only. */
typedef void (*vlm_evaluate_log_fn)(const char *line, void *user_data);

typedef struct vlm_evaluate_options {
  size_t struct_size;
  /* A finished training run to evaluate: <results_dir>/<run>/ where results_dir is given or is config_path's
  ** output_dir. The run supplies what is not given below: the model (its metrics.json "model", else the config's
  ** models[] entry named by the run's "<model>__" prefix), the adapter (<run>/lora_adapter), the output folder
  ** (the run folder) and, with a config, the CSV (data.val_csv), its columns, data.max_eval_samples,
  ** per_device_eval_batch_size, the training.generation_* settings and the model entry's dtype, device and pixel
  ** limits. NULL: no run. */
  const char *run;
  const char *config_path;
  const char *results_dir;
  /* The model: a folder or a Hugging Face id in the offline cache (as vlm_session_options.model). Required
  ** without a run. */
  const char *model;
  /* When set, the checkpoint must be of this type (llava, llava_next, llava_gemma, qwen_vl, qwen2_vl,
  ** qwen2_5_vl, blip2, causal_lm; the run's recorded type otherwise). NULL: not checked. */
  const char *model_type;
  /* PEFT LoRA adapter folders (adapter_config.json + adapter_model.safetensors), applied in order; they replace
  ** the run's adapter. */
  const char *const *adapter_paths;
  size_t num_adapters;
  const char *dtype;  /* "float32" (default), "bfloat16", "float16" */
  const char *device; /* "cpu" (default), "cuda", "cuda:N" */
  uint64_t min_pixels; /* Qwen2-VL pixel budget per image; 0 keeps preprocessor_config.json's value */
  uint64_t max_pixels;
  int num_threads;     /* image preprocessing threads; 0 = every CPU */
  /* The data. csv is required without a config; NULL strings take the defaults above. */
  const char *csv;
  const char *image_base_dir; /* relative image paths; NULL = the CSV's folder */
  const char *image_column;   /* default "url"; "" = text-only prompts */
  const char *query_column;   /* default "query" */
  const char *annotation_column;  /* default "annotation" */
  const char *instruction_column; /* fallback query column, default "instruction" */
  const char *response_column;    /* fallback reference column, default "response" */
  int64_t max_samples;        /* the first N rows; 0 = all */
  /* Where predictions.jsonl and generation_metrics.json go (created if missing). Required without a run. */
  const char *output_dir;
  /* Generation. NULL = the checkpoint's generation_config.json and transformers' defaults. Its on_token
  ** callback, if set, receives prompt indices within the current batch. */
  const vlm_generation_options *generation;
  int batch_size;             /* rows per generate call; 0 (default) = the config's per_device_eval_batch_size, else 1 */
  const char *prompt_template; /* default "{query}" */
  const char *system_message;  /* NULL or "" = none (the chat template's default) */
  /* Images by URL. */
  const char *image_cache_dir;    /* NULL = $XDG_CACHE_HOME/vlmrt/images or ~/.cache/vlmrt/images */
  int64_t fetch_connect_timeout_ms; /* default 10000 */
  int64_t fetch_timeout_ms;         /* default 60000, the whole transfer */
  int fetch_retries;                /* default 2; further tries after a timeout, reset, truncated body, 5xx, 429 */
  uint64_t fetch_max_bytes;         /* default 64 MiB */
  /* Metrics. */
  int meteor_mode;          /* a vlm_meteor_mode; default VLM_METEOR_FULL */
  const char *wordnet_dir;  /* NULL = "/usr/share/wordnet" */
  /* Callbacks, on the calling thread; user_data goes to both. */
  vlm_evaluate_progress_fn on_progress;
  vlm_evaluate_log_fn on_log;
  void *user_data;
} vlm_evaluate_options;

VLM_API void vlm_evaluate_options_init(vlm_evaluate_options *options);

typedef struct vlm_evaluate_result vlm_evaluate_result;

/* Loads the model and adapters, evaluates, writes the files. On success *out_result receives a result to free
** with vlm_evaluate_result_free. */
VLM_API vlm_status vlm_evaluate_run(const vlm_evaluate_options *options, vlm_evaluate_result **out_result);
/* The content of generation_metrics.json (owned by the result). "" for NULL. */
VLM_API const char *vlm_evaluate_result_metrics_json(const vlm_evaluate_result *result);
/* The paths of the two files written (owned by the result). "" for NULL. */
VLM_API const char *vlm_evaluate_result_predictions_path(const vlm_evaluate_result *result);
VLM_API const char *vlm_evaluate_result_metrics_path(const vlm_evaluate_result *result);
/* The number of rows evaluated (0 for NULL). */
VLM_API int64_t vlm_evaluate_result_num_examples(const vlm_evaluate_result *result);
/* One corpus metric by name ("exact_match", "bleu", "meteor", "rougeL", ...); VLM_ERR_NOT_FOUND for a metric the
** result does not have. */
VLM_API vlm_status vlm_evaluate_result_metric(const vlm_evaluate_result *result, const char *name, double *out_value);
VLM_API void vlm_evaluate_result_free(vlm_evaluate_result *result);
/* ---- end of vlm_evaluate ---- */
/* ------------------------------------------------------------------------------------------------------ */
/* The ablation pipeline: every model x LoRA variant of an experiment config, trained and evaluated        */
/* ------------------------------------------------------------------------------------------------------ */

/* vlm_pipeline_run reads an experiment config (configs/vlm_ablation.yaml's format), validates all of it before
** any work starts, then for every model x LoRA variant trains in <output_dir>/<model>__<variant>/ (checkpoints/,
** lora_adapter/, final/, metrics.json, run.log) and, when evaluation.enabled, evaluates the adapter on
** data.val_csv (predictions.jsonl, generation_metrics.json) and data.test_csv (test/...). With
** evaluation.baseline the untuned model is evaluated as run <model>__baseline. Every run is then put side by
** side in <output_dir>/ablation_summary.json and ablation_summary.md.
**
** Re-running the same config skips finished stages and resumes interrupted training from its latest
** checkpoint. A run that fails is recorded (its error.json and the summary) and the other runs go on; the
** call still returns VLM_OK then, and out_counts says how many failed. A run folder made with different
** training settings is refused (that run fails) rather than silently mixed. */

typedef struct vlm_pipeline_progress {
  const char *run;        /* "<model>__<variant>" or "<model>__baseline"; valid during the callback */
  const char *stage;      /* "train", "evaluate" (validation set) or "test" (a constant string) */
  size_t run_index;       /* 0-based among the runs of this call */
  size_t num_runs;
  int64_t done;           /* optimizer steps (train) or examples (evaluate, test) */
  int64_t total;
  double loss;            /* train: the last update's loss; NaN otherwise */
  double learning_rate;   /* train: the last update's rate; NaN otherwise */
  double elapsed_seconds; /* since the stage started (this call) */
} vlm_pipeline_progress;

/* Called after every optimizer update and every evaluated batch, on the calling thread. Return 0 to stop:
** training stops after saving a checkpoint (the next call resumes it), evaluation after the current batch. */
typedef int (*vlm_pipeline_progress_fn)(const vlm_pipeline_progress *progress, void *user_data);
/* Every line written to a run's run.log (run = "" for lines about the whole pipeline). */
typedef void (*vlm_pipeline_log_fn)(const char *run, const char *line, void *user_data);

typedef struct vlm_pipeline_options {
  size_t struct_size;
  const char *config_path;       /* the YAML experiment config. Required. */
  const char *output_dir;        /* NULL or "": the config's output_dir (relative: to the current directory) */
  /* Runs to do: run names ("<model>__<variant>", "<model>__baseline"), model names or variant names.
  ** NULL / 0: every run. A name that matches nothing is VLM_ERR_INVALID_ARGUMENT listing the runs. */
  const char *const *only_runs;
  size_t num_only_runs;
  /* 1: validate the config, its data files and that every model resolves (local folder or offline Hugging
  ** Face cache) and is supported; run nothing, write nothing. Default 0. */
  int validate_only;
  /* 0: train only, even when the config enables evaluation. Default 1. */
  int evaluate;
  /* 1: draw progress on stderr (bars with rate and ETA on a terminal, a plain line every 10 s otherwise)
  ** and print the log lines there. The library prints nothing unless asked to here. Default 0. */
  int show_progress;
  vlm_pipeline_progress_fn on_progress; /* NULL: none */
  vlm_pipeline_log_fn on_log;           /* NULL: none */
  void *user_data;
} vlm_pipeline_options;

VLM_API void vlm_pipeline_options_init(vlm_pipeline_options *options);

typedef struct vlm_pipeline_counts {
  size_t runs;       /* runs selected in this call */
  size_t completed;  /* finished now or earlier (skipped ones included) */
  size_t skipped;    /* already finished before this call */
  size_t failed;
  int cancelled;     /* 1 when on_progress asked to stop; the remaining runs were not started */
} vlm_pipeline_counts;

/* Runs the pipeline. On VLM_OK, *out_summary_json (may be NULL) receives the content of
** ablation_summary.json (with validate_only: {"valid": true, "models": [...], "runs": [...]}); free it with
** vlm_string_free. *out_counts (may be NULL) receives the counts. A bad config, option or data file, or (with
** validate_only) a model that cannot be found, fails before anything is written, with every problem in the
** message (each naming the file, line and key path). */
VLM_API vlm_status vlm_pipeline_run(const vlm_pipeline_options *options, char **out_summary_json,
                                    vlm_pipeline_counts *out_counts);

/* The summary (the content of ablation_summary.json, or vlm_pipeline_run's JSON) as a text table
** ("markdown" = 1: a Markdown table). Free with vlm_string_free. */
VLM_API vlm_status vlm_pipeline_summary_table(const char *summary_json, int markdown, char **out_table);
/* VLM_PIPELINE_API_END */

/* VLM_LOG_API_BEGIN */
/* ------------------------------------------------------------------------------------------------------ */
/* Diagnostics: the log callback                                                                          */
/* ------------------------------------------------------------------------------------------------------ */

/* The library never prints anything by itself. A host that wants its diagnostics (what was loaded, which
** defaults applied, progress of long runs, the message of every failed call at VLM_LOG_DEBUG) installs a
** callback with vlm_set_log_callback.
**
** Lines. Each call of the callback receives exactly one whole line of UTF-8 text: no newline inside, no
** trailing newline, never NULL (possibly ""). The string is valid only during the call; copy it to keep it.
**
** Thread rules. The callback may be called from any thread that is inside a vlm_* call, including the
** library's worker threads. Calls are serialised: the library never calls the callback from two threads at
** once, so it need not be thread-safe itself. It must return promptly and must not call vlm_set_log_callback
** or vlm_set_log_level (that would deadlock); it may call vlm_log_level_name. vlm_set_log_callback and
** vlm_set_log_level may be called from any thread at any time; when vlm_set_log_callback returns, the
** previous callback has returned from its last call and is never called again, so its user_data may be
** freed. */

typedef enum vlm_log_level {
  VLM_LOG_DEBUG = 10,   /* details for diagnosing a problem, e.g. the message of every failed call */
  VLM_LOG_INFO = 20,    /* what happened: a model loaded, a run started or finished */
  VLM_LOG_WARNING = 30, /* something the caller should look at, e.g. an option that was ignored */
  VLM_LOG_ERROR = 40,   /* a failure, also reported through the failing call's status */
  VLM_LOG_OFF = 100     /* as a threshold only: deliver nothing */
} vlm_log_level;

/* Receives one line at `level`; user_data is the pointer given to vlm_set_log_callback. */
typedef void (*vlm_log_callback)(vlm_log_level level, const char *line, void *user_data);

/* Installs `callback` (NULL removes it; the default is none) with its user_data. Process-wide: one
** callback for all sessions and threads. */
VLM_API void vlm_set_log_callback(vlm_log_callback callback, void *user_data);

/* Sets the threshold: lines below `level` are dropped before they are formatted. Default VLM_LOG_INFO.
** VLM_ERR_INVALID_ARGUMENT for a value that is not one of the vlm_log_level constants (the threshold is
** then unchanged). */
VLM_API vlm_status vlm_set_log_level(vlm_log_level level);

/* The current threshold. */
VLM_API vlm_log_level vlm_get_log_level(void);

/* A constant lower-case name for a level ("debug", "info", "warning", "error", "off"; "unknown" for any
** other value). Never NULL. */
VLM_API const char *vlm_log_level_name(vlm_log_level level);
/* VLM_LOG_API_END */

#ifdef __cplusplus
}
#endif

#endif /* VLMRT_H */
