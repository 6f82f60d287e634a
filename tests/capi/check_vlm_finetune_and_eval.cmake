# vlm_finetune_and_eval: every flag, the config errors as the user sees them, the seed's config validated, and
# the documented exit codes (0 ok, 2 usage, 3 bad config or input, 4 some runs failed).
# Arguments: PROGRAM, FIXTURES, SOURCE_DIR, WORK (a scratch folder, emptied first).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/data)

function(run expected_rc)
  execute_process(COMMAND ${PROGRAM} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  WORKING_DIRECTORY ${WORK})
  if(NOT rc EQUAL expected_rc)
    message(FATAL_ERROR "vlm_finetune_and_eval ${ARGN}: exit ${rc}, expected ${expected_rc}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  set(last_err "${err}" PARENT_SCOPE)
endfunction()
function(expect text pattern)
  if(NOT "${text}" MATCHES "${pattern}")
    message(FATAL_ERROR "expected to match '${pattern}':\n${text}")
  endif()
endfunction()

# Usage: 2, with a message.
run(0 --help)
foreach(flag --config --output-dir --only --validate-only --no-eval --quiet --json --version "Exit codes")
  expect("${last_out}" "${flag}")
endforeach()
run(0 --version)
expect("${last_out}" "^vlm_finetune_and_eval \\(vlmrt [0-9]+\\.[0-9]+\\.[0-9]+\\)")
run(2)
expect("${last_err}" "--config FILE is required")
run(2 --bogus)
expect("${last_err}" "unknown option --bogus")
run(2 --config)
expect("${last_err}" "missing value after --config")
run(2 --config a.yaml --config b.yaml)
run(2 --config a.yaml stray)
expect("${last_err}" "unexpected argument stray")
run(2 --config a.yaml --only)

# Bad config or input: 3, every problem named by file, line and key path.
run(3 --config ${WORK}/missing.yaml)
expect("${last_err}" "missing.yaml")
file(WRITE ${WORK}/data/train.csv "url,instruction,response\nsquare.png,Describe this image .,a red table\nwide.png,What is in the picture ?,two blue cats\n")
file(WRITE ${WORK}/data/val.csv "url,query,annotation\nwide.png,What is in the picture ?,two blue cats\n")
file(COPY ${FIXTURES}/session/square.png ${FIXTURES}/session/wide.png DESTINATION ${WORK}/data)
file(WRITE ${WORK}/bad.yaml "experiment_name: bad
output_dir: out
data:
  train_csv: data/train.csv
  val_csv: data/no_such_val.csv
models:
  - name: m
    hf_model_id: ${FIXTURES}/session/qwen2_vl_tiny
    model_type: qwen2_vl
  - name: m
    hf_model_id: ${FIXTURES}/session/qwen2_vl_tiny
lora_variants:
  - name: v
    r: -4
training:
  learning_rate: fast
  num_train_epoch: 1
  warmup_ratio: 1e-2
")
run(3 --config ${WORK}/bad.yaml)
expect("${last_err}" "bad.yaml:5: data.val_csv: file \"data/no_such_val.csv\" not found")
expect("${last_err}" "bad.yaml:10: models\\[1\\].name: \"m\" is used by another model; run names must be unique")
expect("${last_err}" "bad.yaml:14: lora_variants\\[0\\].r: must be a positive integer, found -4")
expect("${last_err}" "bad.yaml:16: training.learning_rate: must be a number, found \"fast\"")
expect("${last_err}" "bad.yaml:17: training.num_train_epoch: unknown key; did you mean 'training.num_train_epochs'\\?")
if(last_err MATCHES "warmup_ratio")
  message(FATAL_ERROR "1e-2 is a number (YAML 1.2), not a string: ${last_err}")
endif()
if(EXISTS ${WORK}/out)
  message(FATAL_ERROR "a bad config must not write anything")
endif()

# A good config: two LoRA variants of the tiny Qwen2-VL, plus its baseline.
file(WRITE ${WORK}/tiny.yaml "experiment_name: tiny
output_dir: out
data:
  train_csv: data/train.csv
  val_csv: data/val.csv
  num_workers: 0
models:
  - name: qwen2
    hf_model_id: ${FIXTURES}/session/qwen2_vl_tiny
    model_type: qwen2_vl
    min_pixels: 1024
    max_pixels: 1024
lora_variants:
  - name: r4
    r: 4
    alpha: 8
  - name: r8
    r: 8
    alpha: 16
training:
  max_steps: 2
  learning_rate: 1e-3
  logging_steps: 1
  generation_max_new_tokens: 2
evaluation:
  baseline: true
")
run(0 --config ${WORK}/tiny.yaml --validate-only)
expect("${last_out}" "tiny.yaml is valid: 3 runs")
expect("${last_out}" "run qwen2__baseline")
if(EXISTS ${WORK}/out)
  message(FATAL_ERROR "--validate-only must not write anything")
endif()
run(3 --config ${WORK}/tiny.yaml --only qwen2__r16)
expect("${last_err}" "\"qwen2__r16\" matches no run of .*runs are: qwen2__baseline, qwen2__r4, qwen2__r8")

# --only, --no-eval, --quiet, --output-dir: one run trained, nothing evaluated, nothing on stderr.
run(0 --config ${WORK}/tiny.yaml --output-dir ${WORK}/elsewhere --only qwen2__r4 --no-eval --quiet)
if(NOT last_err STREQUAL "")
  message(FATAL_ERROR "--quiet printed on stderr:\n${last_err}")
endif()
if(NOT EXISTS ${WORK}/elsewhere/qwen2__r4/metrics.json OR NOT EXISTS ${WORK}/elsewhere/qwen2__r4/lora_adapter/adapter_config.json)
  message(FATAL_ERROR "--only qwen2__r4 did not train qwen2__r4")
endif()
if(EXISTS ${WORK}/elsewhere/qwen2__r4/predictions.jsonl OR EXISTS ${WORK}/elsewhere/qwen2__r8 OR EXISTS ${WORK}/out)
  message(FATAL_ERROR "--no-eval / --only / --output-dir not respected")
endif()
expect("${last_out}" "qwen2__r4 +completed +2 ")
expect("${last_out}" "qwen2__r8 +pending")

# The whole grid, with progress lines on stderr (not a terminal) and --json on stdout: qwen2__r4's training is
# skipped, its evaluation done now.
run(0 --config ${WORK}/tiny.yaml --output-dir ${WORK}/elsewhere --json)
expect("${last_err}" "train qwen2__r8 +50% 1/2")
expect("${last_err}" "eval qwen2__r4 +100% 1/1")
string(JSON runs GET "${last_out}" counts runs)
string(JSON completed GET "${last_out}" counts completed)
string(JSON r4_invocation GET "${last_out}" runs 1 this_invocation)
string(JSON r8_loss GET "${last_out}" runs 2 training final_loss)
string(JSON r8_em TYPE "${last_out}" runs 2 evaluation val metrics exact_match)
if(NOT runs EQUAL 3 OR NOT completed EQUAL 3 OR NOT r4_invocation STREQUAL "ran" OR NOT r8_em STREQUAL "NUMBER")
  message(FATAL_ERROR "unexpected summary (${runs} ${completed} ${r4_invocation} ${r8_loss} ${r8_em}):\n${last_out}")
endif()
foreach(f ablation_summary.json ablation_summary.md qwen2__r8/predictions.jsonl qwen2__r8/generation_metrics.json
          qwen2__r8/run.log qwen2__baseline/generation_metrics.json)
  if(NOT EXISTS ${WORK}/elsewhere/${f})
    message(FATAL_ERROR "missing ${f}")
  endif()
endforeach()
# Again: everything is skipped; the text table and where the outputs are.
run(0 --config ${WORK}/tiny.yaml --output-dir ${WORK}/elsewhere)
expect("${last_err}" "qwen2__r8: already finished, skipped")
expect("${last_out}" "run +status +steps +loss first -> final +EM +BLEU-4 +METEOR +ROUGE-L +examples")
expect("${last_out}" "summary: ${WORK}/elsewhere/ablation_summary.json")

# A run that fails (its model is missing) is recorded, the others go on, the exit code is 4.
file(READ ${WORK}/tiny.yaml text)
string(REPLACE "lora_variants:" "  - name: gone\n    hf_model_id: NoSuchOrg/NoSuchModel\nlora_variants:" text "${text}")
file(WRITE ${WORK}/partly.yaml "${text}")
run(4 --config ${WORK}/partly.yaml --output-dir ${WORK}/elsewhere --only gone --only qwen2__r4)
expect("${last_err}" "3 of 4 runs failed")
expect("${last_out}" "gone__r4 +failed")
expect("${last_out}" "qwen2__r4 +completed")
file(READ ${WORK}/elsewhere/gone__r8/error.json error)
expect("${error}" "NoSuchOrg/NoSuchModel")

# Ctrl-C (SIGINT) during training: the run stops after saving a checkpoint, is recorded as interrupted, exit 130.
find_program(TIMEOUT timeout)
if(TIMEOUT)
  string(REPLACE "max_steps: 2" "max_steps: 1000000" text "${text}")
  string(REPLACE "logging_steps: 1" "logging_steps: 1000\n  save_strategy: steps\n  save_steps: 1000000" text "${text}")
  file(WRITE ${WORK}/long.yaml "${text}")
  execute_process(COMMAND ${TIMEOUT} --preserve-status -s INT 8 ${PROGRAM} --config ${WORK}/long.yaml
                          --output-dir ${WORK}/long --only qwen2__r4
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err WORKING_DIRECTORY ${WORK})
  if(NOT rc EQUAL 130)
    message(FATAL_ERROR "SIGINT: exit ${rc}, expected 130\n${out}\n${err}")
  endif()
  expect("${err}" "interrupted; run the same command again to resume")
  file(READ ${WORK}/long/qwen2__r4/run_state.json state)
  string(JSON status GET "${state}" status)
  file(GLOB checkpoints ${WORK}/long/qwen2__r4/checkpoints/checkpoint-*)
  if(NOT status STREQUAL "interrupted" OR NOT checkpoints)
    message(FATAL_ERROR "SIGINT: status ${status}, checkpoints '${checkpoints}'")
  endif()
endif()

# The seed's config: valid as shipped; with its data present, each model id is looked up in the offline Hugging
# Face cache and a missing one is named with where it was looked for.
file(MAKE_DIRECTORY ${WORK}/seed/data/quic360 ${WORK}/hf_cache)
file(COPY ${WORK}/data/train.csv DESTINATION ${WORK}/seed/data/quic360)
file(WRITE ${WORK}/seed/data/quic360/valid.csv "url,query,annotation\n")
set(ENV{HF_HUB_CACHE} ${WORK}/hf_cache)
set(seed_cmd ${PROGRAM} --config ${SOURCE_DIR}/configs/vlm_ablation.yaml --validate-only)
execute_process(COMMAND ${seed_cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err WORKING_DIRECTORY ${WORK}/seed)
if(NOT rc EQUAL 3)
  message(FATAL_ERROR "seed config without models: exit ${rc}\n${out}\n${err}")
endif()
expect("${err}" "2 models cannot be used")
expect("${err}" "vlm_ablation.yaml:15: models\\[0\\] \\(qwen_vl_chat\\): .*Qwen/Qwen2.5-VL-0.5B-Instruct")
expect("${err}" "models\\[1\\] \\(llava_1.5_7b\\): .*llava-hf/llava-1.5-7b-hf")
expect("${err}" "${WORK}/hf_cache")
# The Qwen id present in the cache (a tiny stand-in snapshot): only the LLaVA model is reported.
set(snapshot ${WORK}/hf_cache/models--Qwen--Qwen2.5-VL-0.5B-Instruct/snapshots/0123456789abcdef0123456789abcdef01234567)
file(MAKE_DIRECTORY ${snapshot})
file(COPY ${FIXTURES}/model/qwen2_5_vl_window_untied/config.json DESTINATION ${snapshot})
file(WRITE ${WORK}/hf_cache/models--Qwen--Qwen2.5-VL-0.5B-Instruct/refs/main "0123456789abcdef0123456789abcdef01234567")
execute_process(COMMAND ${seed_cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err WORKING_DIRECTORY ${WORK}/seed)
if(NOT rc EQUAL 3)
  message(FATAL_ERROR "seed config with the Qwen snapshot: exit ${rc}\n${out}\n${err}")
endif()
expect("${err}" "1 model cannot be used")
expect("${err}" "llava-hf/llava-1.5-7b-hf")
if(err MATCHES "Qwen2.5-VL-0.5B-Instruct")
  message(FATAL_ERROR "the cached Qwen model was reported missing:\n${err}")
endif()
message(STATUS "vlm_finetune_and_eval: all checks passed")
