/* Every vlm_* entry point that returns a status turns a C++ exception thrown inside the library into a status
** and a message naming the function (fault injection through VLMRT_FAULT_INJECT), leaves its outputs untouched,
** and refuses NULL handles, NULL required pointers, NULL options where they are required and a wrong
** struct_size with VLM_ERR_INVALID_ARGUMENT.
**
** `test_fault_c --list` prints every entry point this test covers (one per line, "status NAME" or "plain NAME"
** for the functions without a status); check_fault_coverage.cmake compares that list with `nm -D` so that a new
** exported function cannot be added without a line here. */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdir */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../capi/check.h"
#include "vlmrt.h"

#define MODEL VLM_FIXTURES_DIR "/session/qwen2_vl_tiny"
#define IMAGE VLM_FIXTURES_DIR "/session/wide.png"

/* Shared valid objects the calls below use. */
static vlm_session *g_session;
static vlm_checkpoint *g_checkpoint;
static vlm_metrics_result *g_metrics;
static vlm_evaluate_result *g_evaluation;
static vlm_session *g_train_session;   /* holds g_trainer */
static vlm_session *g_spare_session;   /* for vlm_trainer_create, one short-lived trainer at a time */
static vlm_session *g_adapter_session; /* for vlm_session_load_adapter */
static vlm_trainer *g_trainer;
static vlm_session *g_merge_session;   /* prepared fresh for every vlm_trainer_export_merged call */
static vlm_trainer *g_merge_trainer;
static char g_output_dir[256];
static char g_config[300];
static unsigned char g_png[4096];
static size_t g_png_size;
static int g_touched; /* set when a failed call wrote an output */

static const char *g_images[1] = {IMAGE};
static const char *g_refs[2] = {"a small cat", "one cat"};

static vlm_prompt prompt(void) {
  vlm_prompt p;
  p.text = "Describe this image .";
  p.system_message = NULL;
  p.image_paths = g_images;
  p.num_images = 1;
  return p;
}

static vlm_metrics_example example(void) {
  vlm_metrics_example e;
  e.prediction = "a cat";
  e.references = g_refs;
  e.num_references = 2;
  e.prediction_tokens = 2;
  e.reference_tokens = NULL;
  return e;
}

/* ---- one valid call per entry point; on success the output is freed, on failure it must be untouched ---- */

static vlm_status call_model_locate(void) {
  char *out = NULL;
  vlm_status s = vlm_model_locate(VLM_FIXTURES_DIR "/io/sharded", &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_string_free(out);
  return s;
}
static vlm_status call_checkpoint_open(void) {
  vlm_checkpoint *out = NULL;
  vlm_status s = vlm_checkpoint_open(VLM_FIXTURES_DIR "/io/sharded", &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_checkpoint_free(out);
  return s;
}
static vlm_status call_checkpoint_tensor_info(void) {
  vlm_tensor_info info;
  vlm_status s;
  memset(&info, 0, sizeof info);
  s = vlm_checkpoint_tensor_info(g_checkpoint, 0, &info);
  if (s != VLM_OK && info.name != NULL) g_touched = 1;
  return s;
}
static vlm_status call_image_load(void) {
  vlm_image *out = NULL;
  vlm_status s = vlm_image_load(IMAGE, NULL, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_image_free(out);
  return s;
}
static vlm_status call_image_decode(void) {
  vlm_image *out = NULL;
  vlm_status s = vlm_image_decode(g_png, g_png_size, NULL, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_image_free(out);
  return s;
}
static vlm_status call_session_create(void) {
  vlm_session_options o;
  vlm_session *out = NULL;
  vlm_status s;
  vlm_session_options_init(&o);
  o.model = MODEL;
  s = vlm_session_create(&o, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_session_free(out);
  return s;
}
static vlm_status call_generate(void) {
  vlm_generation_options o;
  vlm_generation *out = NULL;
  vlm_prompt p = prompt();
  vlm_status s;
  vlm_generation_options_init(&o);
  o.max_new_tokens = 2;
  s = vlm_generate(g_session, &p, 1, &o, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_generations_free(out, 1);
  return s;
}
static vlm_status call_score(void) {
  vlm_score_request r;
  vlm_score_result *out = NULL;
  vlm_status s;
  r.prompt = prompt();
  r.continuation = "two cats";
  s = vlm_score(g_session, &r, 1, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_score_results_free(out, 1);
  return s;
}
static vlm_status call_metrics_score(void) {
  vlm_metrics_options o;
  vlm_metrics_example e = example();
  vlm_metrics_result *out = NULL;
  vlm_status s;
  vlm_metrics_options_init(&o);
  o.meteor_mode = VLM_METEOR_WITHOUT_WORDNET;
  s = vlm_metrics_score(&e, 1, &o, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_metrics_result_free(out);
  return s;
}
static vlm_status call_metrics_result_corpus_json(void) {
  char *out = NULL;
  vlm_status s = vlm_metrics_result_corpus_json(g_metrics, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_string_free(out);
  return s;
}
static vlm_status call_metrics_result_example_json(void) {
  char *out = NULL;
  vlm_status s = vlm_metrics_result_example_json(g_metrics, 0, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_string_free(out);
  return s;
}
static vlm_status call_metrics_result_value(void) {
  double value = -7.0;
  const char *implementation = NULL;
  vlm_status s = vlm_metrics_result_value(g_metrics, "bleu", &value, &implementation);
  if (s != VLM_OK && (value != -7.0 || implementation != NULL)) g_touched = 1;
  return s;
}
static vlm_status call_set_log_level(void) { return vlm_set_log_level(VLM_LOG_INFO); }

static vlm_train_example train_example(void) {
  vlm_train_example e;
  memset(&e, 0, sizeof e);
  e.instruction = "Describe this image .";
  e.response = "a wide picture";
  e.image_path = IMAGE;
  return e;
}
static vlm_status call_trainer_create(void) {
  vlm_train_options o;
  vlm_trainer *out = NULL;
  vlm_status s;
  vlm_train_options_init(&o);
  s = vlm_trainer_create(g_spare_session, &o, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_trainer_free(out);
  return s;
}
static vlm_status call_train_step(void) {
  vlm_train_example e = train_example();
  vlm_train_step_result r;
  vlm_status s;
  r.step = -7;
  s = vlm_train_step(g_trainer, &e, 1, &r);
  if (s != VLM_OK && r.step != -7) g_touched = 1;
  return s;
}
static vlm_status call_trainer_save_adapter(void) { return vlm_trainer_save_adapter(g_trainer, "test_fault_work/adapter"); }
static vlm_status call_trainer_save_state(void) { return vlm_trainer_save_state(g_trainer, "test_fault_work/state"); }
static vlm_status call_trainer_load_state(void) { return vlm_trainer_load_state(g_trainer, "test_fault_work/state"); }
static vlm_status call_trainer_parameter_counts(void) {
  int64_t trainable = -7, total = -7;
  vlm_status s = vlm_trainer_parameter_counts(g_trainer, &trainable, &total);
  if (s != VLM_OK && (trainable != -7 || total != -7)) g_touched = 1;
  return s;
}
static vlm_status call_session_load_adapter(void) {
  return vlm_session_load_adapter(g_adapter_session, "test_fault_work/adapter");
}
/* Merging ends a trainer's training: every call gets a fresh session and trainer. */
static void prepare_merge(void) {
  vlm_session_options so;
  vlm_train_options to;
  vlm_session_options_init(&so);
  so.model = MODEL;
  vlm_train_options_init(&to);
  if (vlm_session_create(&so, &g_merge_session) != VLM_OK || vlm_trainer_create(g_merge_session, &to, &g_merge_trainer) != VLM_OK) {
    fprintf(stderr, "prepare_merge: %s\n", vlm_last_error());
  }
}
static void cleanup_merge(void) {
  vlm_trainer_free(g_merge_trainer);
  vlm_session_free(g_merge_session);
  g_merge_trainer = NULL;
  g_merge_session = NULL;
}
static vlm_status call_trainer_export_merged(void) { return vlm_trainer_export_merged(g_merge_trainer, "test_fault_work/merged"); }

static void evaluate_options(vlm_evaluate_options *o, vlm_generation_options *g) {
  vlm_evaluate_options_init(o);
  vlm_generation_options_init(g);
  g->max_new_tokens = 2;
  o->model = MODEL;
  o->csv = VLM_FIXTURES_DIR "/evaluate/val.csv";
  o->max_samples = 2;
  o->output_dir = g_output_dir;
  o->generation = g;
  o->meteor_mode = VLM_METEOR_WITHOUT_WORDNET;
}
static vlm_status call_evaluate_run(void) {
  vlm_evaluate_options o;
  vlm_generation_options g;
  vlm_evaluate_result *out = NULL;
  vlm_status s;
  evaluate_options(&o, &g);
  s = vlm_evaluate_run(&o, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_evaluate_result_free(out);
  return s;
}
static vlm_status call_evaluate_result_metric(void) {
  double value = -7.0;
  vlm_status s = vlm_evaluate_result_metric(g_evaluation, "bleu", &value);
  if (s != VLM_OK && value != -7.0) g_touched = 1;
  return s;
}
static vlm_status call_pipeline_run(void) {
  vlm_pipeline_options o;
  char *summary = NULL;
  vlm_pipeline_counts counts;
  vlm_status s;
  memset(&counts, 0xab, sizeof counts);
  vlm_pipeline_options_init(&o);
  o.config_path = g_config;
  o.validate_only = 1;
  s = vlm_pipeline_run(&o, &summary, &counts);
  if (s != VLM_OK && (summary != NULL || counts.runs != counts.failed)) g_touched = 1;
  vlm_string_free(summary);
  return s;
}
static vlm_status call_pipeline_summary_table(void) {
  char *out = NULL;
  vlm_status s = vlm_pipeline_summary_table("{\"runs\": []}", 1, &out);
  if (s != VLM_OK && out != NULL) g_touched = 1;
  vlm_string_free(out);
  return s;
}

typedef struct entry_point {
  const char *name;
  vlm_status (*call)(void);
  void (*prepare)(void); /* run before each call with faults off (may be NULL) */
  void (*cleanup)(void); /* run after each call with faults off (may be NULL) */
} entry_point;

static const entry_point status_functions[] = {
    {"vlm_model_locate", call_model_locate, NULL, NULL},
    {"vlm_checkpoint_open", call_checkpoint_open, NULL, NULL},
    {"vlm_checkpoint_tensor_info", call_checkpoint_tensor_info, NULL, NULL},
    {"vlm_image_load", call_image_load, NULL, NULL},
    {"vlm_image_decode", call_image_decode, NULL, NULL},
    {"vlm_session_create", call_session_create, NULL, NULL},
    {"vlm_generate", call_generate, NULL, NULL},
    {"vlm_score", call_score, NULL, NULL},
    {"vlm_metrics_score", call_metrics_score, NULL, NULL},
    {"vlm_metrics_result_corpus_json", call_metrics_result_corpus_json, NULL, NULL},
    {"vlm_metrics_result_example_json", call_metrics_result_example_json, NULL, NULL},
    {"vlm_metrics_result_value", call_metrics_result_value, NULL, NULL},
    {"vlm_set_log_level", call_set_log_level, NULL, NULL},
    {"vlm_evaluate_run", call_evaluate_run, NULL, NULL},
    {"vlm_evaluate_result_metric", call_evaluate_result_metric, NULL, NULL},
    {"vlm_pipeline_run", call_pipeline_run, NULL, NULL},
    {"vlm_pipeline_summary_table", call_pipeline_summary_table, NULL, NULL},
    {"vlm_trainer_create", call_trainer_create, NULL, NULL},
    {"vlm_train_step", call_train_step, NULL, NULL},
    {"vlm_trainer_save_adapter", call_trainer_save_adapter, NULL, NULL},
    {"vlm_trainer_save_state", call_trainer_save_state, NULL, NULL},
    {"vlm_trainer_load_state", call_trainer_load_state, NULL, NULL},
    {"vlm_trainer_parameter_counts", call_trainer_parameter_counts, NULL, NULL},
    {"vlm_session_load_adapter", call_session_load_adapter, NULL, NULL},
    {"vlm_trainer_export_merged", call_trainer_export_merged, prepare_merge, cleanup_merge},
};
#define NUM_STATUS_FUNCTIONS (sizeof status_functions / sizeof status_functions[0])

/* Functions without a status: they cannot fail, accept NULL where they take a pointer, and are exercised by
** test_null_arguments below. */
static const char *const plain_functions[] = {
    "vlm_last_error", "vlm_status_name", "vlm_version", "vlm_version_number", "vlm_abi_version",
    "vlm_string_free", "vlm_checkpoint_tensor_count", "vlm_checkpoint_free", "vlm_image_load_options_init",
    "vlm_image_free", "vlm_session_options_init", "vlm_session_free", "vlm_session_cancel",
    "vlm_generation_options_init", "vlm_generations_free", "vlm_score_results_free", "vlm_metrics_options_init",
    "vlm_metrics_result_free", "vlm_metrics_result_num_examples", "vlm_set_log_callback", "vlm_get_log_level",
    "vlm_log_level_name", "vlm_evaluate_options_init", "vlm_evaluate_result_metrics_json",
    "vlm_evaluate_result_predictions_path", "vlm_evaluate_result_metrics_path", "vlm_evaluate_result_num_examples",
    "vlm_evaluate_result_free", "vlm_pipeline_options_init", "vlm_train_options_init", "vlm_trainer_free",
};
#define NUM_PLAIN_FUNCTIONS (sizeof plain_functions / sizeof plain_functions[0])

static void set_fault(const char *spec) {
  if (spec == NULL) {
    unsetenv("VLMRT_FAULT_INJECT");
  } else {
    setenv("VLMRT_FAULT_INJECT", spec, 1);
  }
}

static char g_message[1024]; /* vlm_last_error() of the call, before cleanup could overwrite it */

/* Runs one entry point with VLMRT_FAULT_INJECT = spec (NULL: unset); prepare and cleanup run without faults. */
static vlm_status call_with_fault(const entry_point *e, const char *spec) {
  vlm_status s;
  set_fault(NULL);
  if (e->prepare != NULL) e->prepare();
  g_touched = 0;
  set_fault(spec);
  s = e->call();
  strncpy(g_message, vlm_last_error(), sizeof g_message - 1);
  g_message[sizeof g_message - 1] = '\0';
  set_fault(NULL);
  if (e->cleanup != NULL) e->cleanup();
  return s;
}

static void test_fault_injection(void) {
  static const struct {
    const char *kind;
    vlm_status status;
    const char *prefix; /* the message starts with prefix + function name */
    const char *suffix;
  } kinds[] = {
      {"std", VLM_ERR_INTERNAL, "internal error in ", ": fault injected by VLMRT_FAULT_INJECT into "},
      {"bad_alloc", VLM_ERR_OUT_OF_MEMORY, "out of memory in ", ": std::bad_alloc"},
      {"unknown", VLM_ERR_INTERNAL, "internal error in ", ": unknown exception"},
      {"error", VLM_ERR_INTERNAL, "fault injected by VLMRT_FAULT_INJECT into ", ""},
  };
  size_t i, k;
  char spec[128], expected[256];
  for (i = 0; i < NUM_STATUS_FUNCTIONS; ++i) {
    const entry_point *e = &status_functions[i];
    /* Without a fault the call works (so the faults below are what makes it fail). */
    CHECK(call_with_fault(e, NULL) == VLM_OK);
    if (strcmp(vlm_last_error(), "") != 0) fprintf(stderr, "%s: %s\n", e->name, vlm_last_error());
    for (k = 0; k < sizeof kinds / sizeof kinds[0]; ++k) {
      vlm_status s;
      snprintf(spec, sizeof spec, "%s:%s", e->name, kinds[k].kind);
      s = call_with_fault(e, spec);
      CHECK(s == kinds[k].status);
      CHECK(!g_touched);
      snprintf(expected, sizeof expected, "%s%s%s", kinds[k].prefix, e->name, kinds[k].suffix);
      if (strncmp(g_message, expected, strlen(expected)) != 0) {
        ++failed;
        fprintf(stderr, "%s (%s): message '%s', expected it to start with '%s'\n", e->name, kinds[k].kind,
                g_message, expected);
      } else {
        ++passed;
      }
    }
    /* "*" hits every function; the default kind is std. */
    CHECK(call_with_fault(e, "*") == VLM_ERR_INTERNAL);
    CHECK(strstr(g_message, e->name) != NULL);
    /* A fault aimed at another function leaves this one alone. */
    CHECK(call_with_fault(e, "vlm_no_such_function:bad_alloc") == VLM_OK);
  }
  set_fault(NULL);
}

/* NULL handles, NULL outputs, NULL or mis-sized options, for every entry point. */
static void test_null_arguments(void) {
  char *str = (char *)"untouched";
  vlm_checkpoint *ckpt = NULL;
  vlm_tensor_info info;
  vlm_image *image = NULL;
  vlm_image_load_options io;
  vlm_session_options so;
  vlm_session *session = NULL;
  vlm_generation_options go;
  vlm_generation *gens = NULL;
  vlm_prompt p = prompt();
  vlm_score_request req;
  vlm_score_result *scores = NULL;
  vlm_metrics_options mo;
  vlm_metrics_example ex = example();
  vlm_metrics_result *metrics = NULL;
  double value = -7.0;

  CHECK(vlm_model_locate(NULL, &str) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_model_locate(MODEL, NULL) == VLM_ERR_INVALID_ARGUMENT);

  CHECK(vlm_checkpoint_open(NULL, &ckpt) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_checkpoint_open(MODEL, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_checkpoint_open(VLM_FIXTURES_DIR "/no/such/dir", &ckpt) == VLM_ERR_NOT_FOUND);
  CHECK(vlm_checkpoint_tensor_info(NULL, 0, &info) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_checkpoint_tensor_info(g_checkpoint, 0, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_checkpoint_tensor_info(g_checkpoint, (size_t)-1, &info) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_checkpoint_tensor_count(NULL) == 0);

  vlm_image_load_options_init(&io);
  CHECK(vlm_image_load(NULL, &io, &image) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_image_load(IMAGE, &io, NULL) == VLM_ERR_INVALID_ARGUMENT);
  io.struct_size = sizeof io + 8;
  CHECK(vlm_image_load(IMAGE, &io, &image) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "struct_size") != NULL);
  CHECK(vlm_image_decode(g_png, g_png_size, &io, &image) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_image_decode(NULL, 3, NULL, &image) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_image_decode(g_png, g_png_size, NULL, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_image_decode(g_png, 0, NULL, &image) != VLM_OK);
  CHECK(vlm_image_load(VLM_FIXTURES_DIR "/no/such.png", NULL, &image) == VLM_ERR_NOT_FOUND);

  CHECK(vlm_session_create(NULL, &session) == VLM_ERR_INVALID_ARGUMENT);
  vlm_session_options_init(&so);
  so.model = MODEL;
  CHECK(vlm_session_create(&so, NULL) == VLM_ERR_INVALID_ARGUMENT);
  so.struct_size = 0;
  CHECK(vlm_session_create(&so, &session) == VLM_ERR_INVALID_ARGUMENT);
  so.struct_size = sizeof so;
  so.dtype = "float64";
  CHECK(vlm_session_create(&so, &session) == VLM_ERR_INVALID_ARGUMENT);
  so.dtype = NULL;
  so.model = VLM_FIXTURES_DIR "/no/such/model";
  CHECK(vlm_session_create(&so, &session) == VLM_ERR_NOT_FOUND);

  vlm_generation_options_init(&go);
  go.max_new_tokens = 1;
  CHECK(vlm_generate(NULL, &p, 1, &go, &gens) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_generate(g_session, NULL, 1, &go, &gens) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_generate(g_session, &p, 1, &go, NULL) == VLM_ERR_INVALID_ARGUMENT);
  p.text = NULL;
  CHECK(vlm_generate(g_session, &p, 1, &go, &gens) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "prompts[0].text") != NULL);
  p = prompt();
  p.image_paths = NULL;
  CHECK(vlm_generate(g_session, &p, 1, &go, &gens) == VLM_ERR_INVALID_ARGUMENT);
  p = prompt();
  go.struct_size = 4;
  CHECK(vlm_generate(g_session, &p, 1, &go, &gens) == VLM_ERR_INVALID_ARGUMENT);
  go.struct_size = sizeof go;
  p.image_paths = NULL;
  p.num_images = 0;
  /* NULL options are the defaults: allowed, and the text-only prompt generates. */
  CHECK(vlm_generate(g_session, &p, 1, NULL, &gens) == VLM_OK);
  vlm_generations_free(gens, 1);
  gens = NULL;

  req.prompt = prompt();
  req.continuation = NULL;
  CHECK(vlm_score(g_session, &req, 1, &scores) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "requests[0].continuation") != NULL);
  req.continuation = "cat";
  CHECK(vlm_score(NULL, &req, 1, &scores) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_score(g_session, NULL, 1, &scores) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_score(g_session, &req, 0, &scores) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_score(g_session, &req, 1, NULL) == VLM_ERR_INVALID_ARGUMENT);

  vlm_metrics_options_init(&mo);
  mo.meteor_mode = VLM_METEOR_OFF;
  CHECK(vlm_metrics_score(&ex, 1, &mo, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_score(NULL, 1, &mo, &metrics) == VLM_ERR_INVALID_ARGUMENT);
  ex.prediction = NULL;
  CHECK(vlm_metrics_score(&ex, 1, &mo, &metrics) == VLM_ERR_INVALID_ARGUMENT);
  ex = example();
  ex.num_references = 0;
  CHECK(vlm_metrics_score(&ex, 1, &mo, &metrics) == VLM_ERR_INVALID_ARGUMENT);
  ex = example();
  mo.struct_size = 1;
  CHECK(vlm_metrics_score(&ex, 1, &mo, &metrics) == VLM_ERR_INVALID_ARGUMENT);
  mo.struct_size = sizeof mo;
  mo.meteor_mode = 7;
  CHECK(vlm_metrics_score(&ex, 1, &mo, &metrics) == VLM_ERR_INVALID_ARGUMENT);
  mo.meteor_mode = VLM_METEOR_OFF;
  mo.num_threads = -1;
  CHECK(vlm_metrics_score(&ex, 1, &mo, &metrics) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_corpus_json(NULL, &str) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_corpus_json(g_metrics, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_example_json(NULL, 0, &str) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_example_json(g_metrics, 0, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_example_json(g_metrics, 1, &str) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_value(NULL, "bleu", &value, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_value(g_metrics, NULL, &value, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_value(g_metrics, "bleu", NULL, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_result_value(g_metrics, "no_such_metric", &value, NULL) == VLM_ERR_NOT_FOUND);
  CHECK(vlm_metrics_result_num_examples(NULL) == 0);

  CHECK(vlm_set_log_level((vlm_log_level)-3) == VLM_ERR_INVALID_ARGUMENT);

  {
    vlm_evaluate_options eo;
    vlm_generation_options eg;
    vlm_evaluate_result *evaluation = NULL;
    vlm_pipeline_options po;
    vlm_pipeline_counts counts;
    evaluate_options(&eo, &eg);
    CHECK(vlm_evaluate_run(NULL, &evaluation) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_evaluate_run(&eo, NULL) == VLM_ERR_INVALID_ARGUMENT);
    eo.struct_size = 8;
    CHECK(vlm_evaluate_run(&eo, &evaluation) == VLM_ERR_INVALID_ARGUMENT);
    evaluate_options(&eo, &eg);
    eg.struct_size = 8;
    CHECK(vlm_evaluate_run(&eo, &evaluation) == VLM_ERR_INVALID_ARGUMENT);
    evaluate_options(&eo, &eg);
    eo.csv = VLM_FIXTURES_DIR "/no/such.csv";
    CHECK(vlm_evaluate_run(&eo, &evaluation) == VLM_ERR_NOT_FOUND);
    CHECK(evaluation == NULL);
    CHECK(vlm_evaluate_result_metric(NULL, "bleu", &value) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_evaluate_result_metric(g_evaluation, NULL, &value) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_evaluate_result_metric(g_evaluation, "bleu", NULL) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_evaluate_result_metric(g_evaluation, "no_such_metric", &value) == VLM_ERR_NOT_FOUND);
    CHECK(strcmp(vlm_evaluate_result_metrics_json(NULL), "") == 0);
    CHECK(strcmp(vlm_evaluate_result_predictions_path(NULL), "") == 0);
    CHECK(strcmp(vlm_evaluate_result_metrics_path(NULL), "") == 0);
    CHECK(vlm_evaluate_result_num_examples(NULL) == 0);
    vlm_evaluate_result_free(NULL);
    vlm_evaluate_options_init(NULL);

    memset(&counts, 0xab, sizeof counts);
    CHECK(vlm_pipeline_run(NULL, &str, &counts) == VLM_ERR_INVALID_ARGUMENT);
    vlm_pipeline_options_init(&po);
    CHECK(vlm_pipeline_run(&po, &str, &counts) == VLM_ERR_INVALID_ARGUMENT); /* no config_path */
    po.config_path = VLM_FIXTURES_DIR "/no/such.yaml";
    CHECK(vlm_pipeline_run(&po, &str, &counts) != VLM_OK);
    po.config_path = g_config;
    po.validate_only = 1;
    po.struct_size = 3;
    CHECK(vlm_pipeline_run(&po, &str, &counts) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(counts.runs == counts.failed && counts.runs != 0); /* still the 0xab pattern */
    vlm_pipeline_options_init(NULL);
    CHECK(vlm_pipeline_summary_table(NULL, 0, &str) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_pipeline_summary_table("{\"runs\": []}", 0, NULL) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_pipeline_summary_table("not json", 0, &str) != VLM_OK);
  }

  {
    vlm_train_options to;
    vlm_trainer *trainer = NULL;
    vlm_train_example ex2 = train_example();
    vlm_train_step_result r;
    int64_t trainable = -7;
    static const uint8_t pixels[12] = {0};
    r.step = -7;
    vlm_train_options_init(&to);
    CHECK(vlm_trainer_create(NULL, &to, &trainer) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_create(g_spare_session, NULL, &trainer) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_create(g_spare_session, &to, NULL) == VLM_ERR_INVALID_ARGUMENT);
    to.struct_size = 16;
    CHECK(vlm_trainer_create(g_spare_session, &to, &trainer) == VLM_ERR_INVALID_ARGUMENT);
    vlm_train_options_init(&to);
    to.lr_scheduler_type = "sideways";
    CHECK(vlm_trainer_create(g_spare_session, &to, &trainer) == VLM_ERR_INVALID_ARGUMENT);
    vlm_train_options_init(&to);
    CHECK(vlm_trainer_create(g_train_session, &to, &trainer) == VLM_ERR_INVALID_ARGUMENT); /* already has one */
    CHECK(trainer == NULL);
    CHECK(vlm_train_step(NULL, &ex2, 1, &r) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_train_step(g_trainer, NULL, 1, &r) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_train_step(g_trainer, &ex2, 0, &r) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_train_step(g_trainer, &ex2, 1, NULL) == VLM_ERR_INVALID_ARGUMENT);
    ex2.instruction = NULL;
    CHECK(vlm_train_step(g_trainer, &ex2, 1, &r) == VLM_ERR_INVALID_ARGUMENT);
    ex2 = train_example();
    ex2.rgb = pixels; /* both a path and pixels */
    ex2.width = 2;
    ex2.height = 2;
    CHECK(vlm_train_step(g_trainer, &ex2, 1, &r) == VLM_ERR_INVALID_ARGUMENT);
    ex2.image_path = NULL;
    ex2.stride = 1; /* smaller than width * 3 */
    CHECK(vlm_train_step(g_trainer, &ex2, 1, &r) == VLM_ERR_INVALID_ARGUMENT);
    ex2 = train_example();
    ex2.image_path = VLM_FIXTURES_DIR "/no/such.png";
    CHECK(vlm_train_step(g_trainer, &ex2, 1, &r) == VLM_ERR_NOT_FOUND);
    CHECK(r.step == -7);
    CHECK(vlm_trainer_save_adapter(NULL, "x") == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_save_adapter(g_trainer, NULL) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_save_state(NULL, "x") == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_save_state(g_trainer, NULL) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_load_state(NULL, "x") == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_load_state(g_trainer, NULL) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_load_state(g_trainer, VLM_FIXTURES_DIR "/no/such/state") == VLM_ERR_NOT_FOUND);
    CHECK(vlm_trainer_export_merged(NULL, "x") == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_export_merged(g_trainer, NULL) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_trainer_parameter_counts(NULL, &trainable, NULL) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(trainable == -7);
    CHECK(vlm_trainer_parameter_counts(g_trainer, NULL, NULL) == VLM_OK);
    CHECK(vlm_session_load_adapter(NULL, "x") == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_session_load_adapter(g_adapter_session, NULL) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(vlm_session_load_adapter(g_adapter_session, VLM_FIXTURES_DIR "/no/such/adapter") == VLM_ERR_NOT_FOUND);
    vlm_trainer_free(NULL);
    vlm_train_options_init(NULL);
  }

  /* Outputs untouched by all the failures above. */
  CHECK(strcmp(str, "untouched") == 0);
  CHECK(ckpt == NULL && image == NULL && session == NULL && gens == NULL && scores == NULL && metrics == NULL);
  CHECK(value == -7.0);

  /* Functions without a status accept NULL. */
  CHECK(vlm_last_error() != NULL);
  CHECK(strcmp(vlm_status_name((vlm_status)-1), "unknown status") == 0);
  CHECK(vlm_version() != NULL && vlm_version_number() >= 0 && vlm_abi_version() == VLMRT_ABI_VERSION);
  vlm_string_free(NULL);
  vlm_checkpoint_free(NULL);
  vlm_image_load_options_init(NULL);
  vlm_image_free(NULL);
  vlm_session_options_init(NULL);
  vlm_session_free(NULL);
  vlm_session_cancel(NULL);
  vlm_generation_options_init(NULL);
  vlm_generations_free(NULL, 5);
  vlm_score_results_free(NULL, 5);
  vlm_metrics_options_init(NULL);
  vlm_metrics_result_free(NULL);
  vlm_set_log_callback(NULL, NULL);
  CHECK(vlm_get_log_level() == VLM_LOG_INFO);
  CHECK(strcmp(vlm_log_level_name((vlm_log_level)0), "unknown") == 0);
}

static int setup(void) {
  vlm_session_options so;
  vlm_metrics_options mo;
  vlm_metrics_example ex = example();
  FILE *f = fopen(VLM_FIXTURES_DIR "/image/rgb8.png", "rb");
  if (f == NULL) return 0;
  g_png_size = fread(g_png, 1, sizeof g_png, f);
  fclose(f);
  vlm_session_options_init(&so);
  so.model = MODEL;
  vlm_metrics_options_init(&mo);
  mo.meteor_mode = VLM_METEOR_OFF;
  {
    /* Outputs go to a fixed folder in the working directory (the build tree under ctest), rewritten each run. */
    vlm_evaluate_options eo;
    vlm_generation_options eg;
    snprintf(g_output_dir, sizeof g_output_dir, "test_fault_work");
    if (mkdir(g_output_dir, 0755) != 0 && errno != EEXIST) return 0;
    evaluate_options(&eo, &eg);
    if (vlm_evaluate_run(&eo, &g_evaluation) != VLM_OK) return 0;
    {
      vlm_train_options to;
      vlm_train_options_init(&to);
      if (vlm_session_create(&so, &g_train_session) != VLM_OK || vlm_session_create(&so, &g_spare_session) != VLM_OK ||
          vlm_session_create(&so, &g_adapter_session) != VLM_OK ||
          vlm_trainer_create(g_train_session, &to, &g_trainer) != VLM_OK) {
        return 0;
      }
    }
    /* A minimal experiment config over the fixtures, for vlm_pipeline_run's validate_only mode. */
    snprintf(g_config, sizeof g_config, "%s/config.yaml", g_output_dir);
    f = fopen(g_config, "w");
    if (f == NULL) return 0;
    fprintf(f,
            "experiment_name: \"fault\"\noutput_dir: \"%s/pipeline\"\n"
            "data:\n  train_csv: \"%s\"\n  val_csv: \"%s\"\n  image_column: \"url\"\n"
            "  instruction_column: \"instruction\"\n  response_column: \"response\"\n"
            "models:\n  - name: \"tiny\"\n    hf_model_id: \"%s\"\n    model_type: \"qwen2_vl\"\n"
            "lora_variants:\n  - name: \"r2\"\n    r: 2\n    alpha: 4\n"
            "training:\n  num_train_epochs: 1\n",
            g_output_dir, VLM_FIXTURES_DIR "/train/data/train.csv", VLM_FIXTURES_DIR "/train/data/train.csv", MODEL);
    fclose(f);
  }
  return g_png_size > 0 && g_png_size < sizeof g_png && vlm_session_create(&so, &g_session) == VLM_OK &&
         vlm_checkpoint_open(VLM_FIXTURES_DIR "/io/sharded", &g_checkpoint) == VLM_OK &&
         vlm_metrics_score(&ex, 1, &mo, &g_metrics) == VLM_OK;
}

int main(int argc, char **argv) {
  size_t i;
  if (argc > 1 && strcmp(argv[1], "--list") == 0) {
    for (i = 0; i < NUM_STATUS_FUNCTIONS; ++i) printf("status %s\n", status_functions[i].name);
    for (i = 0; i < NUM_PLAIN_FUNCTIONS; ++i) printf("plain %s\n", plain_functions[i]);
    return 0;
  }
  set_fault(NULL);
  if (!setup()) {
    fprintf(stderr, "setup failed: %s\n", vlm_last_error());
    return 1;
  }
  test_fault_injection();
  test_null_arguments();
  vlm_metrics_result_free(g_metrics);
  vlm_evaluate_result_free(g_evaluation);
  vlm_trainer_free(g_trainer);
  vlm_session_free(g_train_session);
  vlm_session_free(g_spare_session);
  vlm_session_free(g_adapter_session);
  vlm_checkpoint_free(g_checkpoint);
  vlm_session_free(g_session);
  printf("%d passed, %d failed (%u entry points with a status, %u without)\n", passed, failed,
         (unsigned)NUM_STATUS_FUNCTIONS, (unsigned)NUM_PLAIN_FUNCTIONS);
  return failed == 0 ? 0 : 1;
}
