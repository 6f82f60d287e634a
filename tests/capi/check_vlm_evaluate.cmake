# vlm_evaluate: every flag and every documented error, on the tiny Qwen2-VL checkpoint and the evaluation fixture
# (tests/fixtures/evaluate: answers and metrics from transformers + PEFT + sacrebleu/rouge_score).
# Run as: cmake -DEVALUATE=<vlm_evaluate> -DFIXTURES=<tests/fixtures> -DWORK=<scratch folder> -P check_vlm_evaluate.cmake
cmake_minimum_required(VERSION 3.19)  # string(JSON)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(run expected_rc)
  execute_process(COMMAND ${EVALUATE} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expected_rc)
    message(FATAL_ERROR "vlm_evaluate ${ARGN}: exit ${rc}, expected ${expected_rc}\nstdout: ${out}\nstderr: ${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  set(last_err "${err}" PARENT_SCOPE)
endfunction()
function(expect_match text regex what)
  if(NOT "${text}" MATCHES "${regex}")
    message(FATAL_ERROR "${what}: '${regex}' not found in:\n${text}")
  endif()
endfunction()
function(count_lines file out_var)
  file(STRINGS ${file} lines)
  list(LENGTH lines n)
  set(${out_var} ${n} PARENT_SCOPE)
endfunction()
# The corpus value of a metric in a generation_metrics.json document.
function(metric_value json name out_var)
  string(JSON v GET "${json}" metrics ${name} value)
  set(${out_var} ${v} PARENT_SCOPE)
endfunction()
function(expect_near got want what)
  # CMake has no floating-point arithmetic: compare the leading 10 characters of the printed numbers.
  string(SUBSTRING "${got}" 0 10 g)
  string(SUBSTRING "${want}" 0 10 w)
  if(NOT g STREQUAL w)
    message(FATAL_ERROR "${what}: ${got}, expected ${want}")
  endif()
endfunction()

set(model ${FIXTURES}/session/qwen2_vl_tiny)
set(csv ${FIXTURES}/evaluate/val.csv)
set(adapter ${FIXTURES}/train/adapter_after_curve)
file(READ ${FIXTURES}/evaluate/expected.json expected)
string(JSON template GET "${expected}" prompt_template)
string(JSON system GET "${expected}" system_message)
set(common --csv ${csv} --max-new-tokens 6 --prompt-template "${template}" --system-message "${system}")

# --help documents every flag and the exit codes; --version.
run(0 --help)
foreach(flag --run --config --results-dir --csv --output-dir --model-id --lora-path --model-type --batch-size
        --max-new-tokens --prompt-template --system-message --num-beams --do-sample --greedy --temperature --top-p
        --top-k --repetition-penalty --length-penalty --min-new-tokens --seed --dtype --device --max-samples
        --min-pixels --max-pixels --json --quiet --image-column --query-column --annotation-column --image-base-dir
        --image-cache-dir --fetch-timeout-ms --fetch-retries --max-image-bytes --meteor --wordnet-dir)
  expect_match("${last_out}" "${flag}" "--help lacks ${flag}")
endforeach()
expect_match("${last_out}" "Exit codes: 0 success, 2 bad usage" "--help exit codes")
expect_match("${last_out}" "Before anything is generated every row is checked" "--help preflight")
run(0 --version)
expect_match("${last_out}" "^vlmrt [0-9]" "--version")

# The base model: answers and metrics equal the reference (transformers generate, sacrebleu, rouge_score).
run(0 --model-id ${model} ${common} --output-dir ${WORK}/base --batch-size 2 --json --dtype float32 --device cpu)
string(JSON n GET "${last_out}" num_examples)
if(NOT n EQUAL 5)
  message(FATAL_ERROR "num_examples ${n}")
endif()
foreach(name exact_match bleu rougeL)
  metric_value("${last_out}" ${name} got)
  string(JSON want GET "${expected}" base metrics ${name})
  expect_near("${got}" "${want}" "base ${name}")
endforeach()
string(JSON impl GET "${last_out}" metrics bleu implementation)
expect_match("${impl}" "sacrebleu" "bleu implementation")
string(JSON impl GET "${last_out}" metrics meteor implementation)
expect_match("${impl}" "nltk" "meteor implementation")
string(JSON bs GET "${last_out}" evaluation batch_size)
if(NOT bs EQUAL 2)
  message(FATAL_ERROR "batch_size ${bs}")
endif()
count_lines(${WORK}/base/predictions.jsonl lines)
if(NOT lines EQUAL 5)
  message(FATAL_ERROR "predictions.jsonl has ${lines} lines")
endif()
file(STRINGS ${WORK}/base/predictions.jsonl first LIMIT_COUNT 1)
string(JSON prediction GET "${first}" prediction)
string(JSON want GET "${expected}" base predictions 0 text)
if(NOT prediction STREQUAL want)
  message(FATAL_ERROR "row 0: '${prediction}', transformers: '${want}'")
endif()
foreach(key index csv_line image query reference finish_reason scores)
  string(JSON t ERROR_VARIABLE missing TYPE "${first}" ${key})
  if(missing)
    message(FATAL_ERROR "predictions.jsonl lacks ${key}: ${first}")
  endif()
endforeach()
expect_match("${last_err}" "5/5 rows" "progress lines on stderr")

# The table output names the files.
run(0 --model-id ${model} ${common} --output-dir ${WORK}/table)
expect_match("${last_out}" "5 examples" "table")
expect_match("${last_out}" "bleu +[0-9.]+" "table")
expect_match("${last_out}" "predictions: .*table/predictions.jsonl" "table paths")

# --lora-path: the adapter's answers equal PEFT's.
run(0 --model-id ${model} --lora-path ${adapter} ${common} --output-dir ${WORK}/adapter --json --quiet)
if(NOT last_err STREQUAL "")
  message(FATAL_ERROR "--quiet printed: ${last_err}")
endif()
foreach(name exact_match bleu rougeL)
  metric_value("${last_out}" ${name} got)
  string(JSON want GET "${expected}" adapter_run metrics ${name})
  expect_near("${got}" "${want}" "adapter ${name}")
endforeach()
string(JSON a GET "${last_out}" evaluation adapters 0)
expect_match("${a}" "adapter_after_curve" "adapters recorded")

# --run through --results-dir: the model from metrics.json, the adapter from lora_adapter/, output in the run folder.
file(MAKE_DIRECTORY ${WORK}/results/tiny__r8)
file(COPY ${adapter}/ DESTINATION ${WORK}/results/tiny__r8/lora_adapter)
file(WRITE ${WORK}/results/tiny__r8/metrics.json "{\"model\": \"${model}\", \"model_type\": \"qwen2_vl\", \"completed\": true}\n")
run(0 --run tiny__r8 --results-dir ${WORK}/results ${common} --json --quiet)
foreach(name bleu rougeL)
  metric_value("${last_out}" ${name} got)
  string(JSON want GET "${expected}" adapter_run metrics ${name})
  expect_near("${got}" "${want}" "--run ${name}")
endforeach()
if(NOT EXISTS ${WORK}/results/tiny__r8/predictions.jsonl OR NOT EXISTS ${WORK}/results/tiny__r8/generation_metrics.json)
  message(FATAL_ERROR "--run did not write into the run folder")
endif()
# --model-type is checked against the checkpoint (and the run's recorded type is too).
run(3 --run tiny__r8 --results-dir ${WORK}/results ${common} --model-type llava --output-dir ${WORK}/x)
expect_match("${last_err}" "'llava'.*qwen2_vl" "--model-type mismatch")
run(0 --model-id ${model} ${common} --model-type qwen2_vl --output-dir ${WORK}/mt --max-samples 1 --quiet)
run(3 --model-id ${model} ${common} --model-type gpt5 --output-dir ${WORK}/x --quiet)
expect_match("${last_err}" "gpt5" "unknown model type")
run(3 --run nope --results-dir ${WORK}/results ${common})
expect_match("${last_err}" "no run 'nope'.*tiny__r8" "unknown run lists the runs")

# --run through --config: output_dir, data.val_csv, generation_* and the eval batch size come from the config.
file(WRITE ${WORK}/config.yaml "experiment_name: t
output_dir: ${WORK}/results
data:
  train_csv: ${csv}
  val_csv: ${csv}
  max_eval_samples: 3
models:
  - name: tiny
    hf_model_id: ${model}
    model_type: qwen2_vl
lora_variants:
  - name: r8
    r: 8
    alpha: 16
    dropout: 0.0
    target_modules: null
training:
  learning_rate: 5e-5
  per_device_eval_batch_size: 2
  generation_max_new_tokens: 4
")
run(0 --run tiny__r8 --config ${WORK}/config.yaml --json --quiet)
string(JSON n GET "${last_out}" num_examples)
string(JSON bs GET "${last_out}" evaluation batch_size)
string(JSON mnt GET "${last_out}" evaluation generation max_new_tokens)
if(NOT n EQUAL 3 OR NOT bs EQUAL 2 OR NOT mnt EQUAL 4)
  message(FATAL_ERROR "config defaults not applied: examples ${n}, batch ${bs}, max_new_tokens ${mnt}")
endif()
# Flags override the config.
run(0 --run tiny__r8 --config ${WORK}/config.yaml --max-samples 2 --batch-size 1 --max-new-tokens 3 --output-dir ${WORK}/override --json --quiet)
string(JSON n GET "${last_out}" num_examples)
string(JSON bs GET "${last_out}" evaluation batch_size)
string(JSON mnt GET "${last_out}" evaluation generation max_new_tokens)
if(NOT n EQUAL 2 OR NOT bs EQUAL 1 OR NOT mnt EQUAL 3)
  message(FATAL_ERROR "flags did not override the config: examples ${n}, batch ${bs}, max_new_tokens ${mnt}")
endif()

# Generation flags reach the generation (recorded in the evaluation block).
run(0 --model-id ${model} --csv ${csv} --output-dir ${WORK}/gen --max-samples 2 --json --quiet
    --max-new-tokens 5 --min-new-tokens 2 --num-beams 2 --repetition-penalty 1.3 --length-penalty 0.9)
# (string(JSON GET) reprints numbers at full precision: read the printed document itself)
string(REPLACE " " "" compact "${last_out}")
foreach(pair "max_new_tokens\":5," "min_new_tokens\":2," "num_beams\":2," "repetition_penalty\":1.3," "length_penalty\":0.9")
  expect_match("${compact}" "\"generation\":{[^}]*${pair}" "generation flags")
endforeach()
run(0 --model-id ${model} --csv ${csv} --output-dir ${WORK}/sample --max-samples 2 --json --quiet
    --max-new-tokens 4 --do-sample --temperature 0.7 --top-p 0.9 --top-k 5 --seed 3)
string(REPLACE " " "" compact "${last_out}")
foreach(pair "do_sample\":true," "temperature\":0.7," "top_p\":0.9" "top_k\":5," "seed\":3")
  expect_match("${compact}" "\"generation\":{[^}]*${pair}" "sampling flags")
endforeach()
run(0 --model-id ${model} --csv ${csv} --output-dir ${WORK}/greedy --max-samples 1 --greedy --quiet)
# Pixel limits (the fixed 224x224 mode) and column / image options.
run(0 --model-id ${model} --csv ${csv} --output-dir ${WORK}/px --max-samples 1 --min-pixels 50176 --max-pixels 50176 --max-new-tokens 2 --quiet)
file(WRITE ${WORK}/cols.csv "picture,question,answer\n${FIXTURES}/session/wide.png,Describe this image .,assistant\n")
run(0 --model-id ${model} --csv ${WORK}/cols.csv --output-dir ${WORK}/cols --image-column picture --query-column question --annotation-column answer --max-new-tokens 2 --quiet)
file(WRITE ${WORK}/rel.csv "url,query,annotation\nwide.png,Describe this image .,assistant\n")
run(0 --model-id ${model} --csv ${WORK}/rel.csv --image-base-dir ${FIXTURES}/session --output-dir ${WORK}/rel --max-new-tokens 2 --quiet
    --image-cache-dir ${WORK}/cache --fetch-timeout-ms 2000 --fetch-retries 0 --max-image-bytes 1000000)
file(WRITE ${WORK}/text.csv "query,annotation\nhow many cats and dog ?,two cats\n")
# (an empty argument does not survive a CMake list: call the program directly)
execute_process(COMMAND ${EVALUATE} --model-id ${model} --csv ${WORK}/text.csv --image-column "" --output-dir ${WORK}/text
                        --max-new-tokens 3 --json --quiet RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "text-only evaluation: exit ${rc}: ${err}")
endif()
string(JSON n GET "${out}" num_examples)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "text-only evaluation: ${out}")
endif()
# METEOR modes.
run(0 --model-id ${model} --csv ${csv} --output-dir ${WORK}/m1 --max-samples 1 --max-new-tokens 2 --meteor no-wordnet --json --quiet)
expect_match("${last_out}" "meteor_no_wordnet" "--meteor no-wordnet")
run(0 --model-id ${model} --csv ${csv} --output-dir ${WORK}/m2 --max-samples 1 --max-new-tokens 2 --meteor off --json --quiet)
if(last_out MATCHES "\"meteor")
  message(FATAL_ERROR "--meteor off still reports METEOR")
endif()
run(3 --model-id ${model} --csv ${csv} --output-dir ${WORK}/m3 --wordnet-dir ${WORK}/no-wordnet --quiet)
expect_match("${last_err}" "no-wordnet" "--wordnet-dir names the folder")

# Bad input (exit 3), named precisely; nothing is written.
file(WRITE ${WORK}/bad_row.csv "url,query,annotation\n${FIXTURES}/session/wide.png,q,r\n${WORK}/missing.png,q,r\n")
run(3 --model-id ${model} --csv ${WORK}/bad_row.csv --output-dir ${WORK}/bad)
expect_match("${last_err}" "bad_row.csv data row 2 \\(line 3\\)" "bad row named")
if(EXISTS ${WORK}/bad/predictions.jsonl)
  message(FATAL_ERROR "a failed evaluation wrote predictions.jsonl")
endif()
file(WRITE ${WORK}/ragged.csv "url,query,annotation\na.png,q\n")
run(3 --model-id ${model} --csv ${WORK}/ragged.csv --output-dir ${WORK}/bad)
expect_match("${last_err}" "ragged.csv:2" "ragged row named")
file(WRITE ${WORK}/nocol.csv "url,question,annotation\na.png,q,r\n")
run(3 --model-id ${model} --csv ${WORK}/nocol.csv --output-dir ${WORK}/bad)
expect_match("${last_err}" "'query'" "missing column")
run(3 --model-id ${model} --csv ${WORK}/absent.csv --output-dir ${WORK}/bad)
expect_match("${last_err}" "absent.csv" "missing CSV")
run(3 --model-id ${FIXTURES}/session/no-such-model --csv ${csv} --output-dir ${WORK}/bad)
run(3 --model-id ${model} --lora-path ${WORK}/no-adapter --csv ${csv} --output-dir ${WORK}/bad)
expect_match("${last_err}" "no-adapter" "missing adapter")
run(3 --model-id ${model} --csv ${csv} --output-dir ${WORK}/bad --top-p 7)
run(3 --model-id ${model} --csv ${csv} --output-dir ${WORK}/bad --dtype float8)
expect_match("${last_err}" "float8" "bad dtype")
run(3 --model-id ${model} --csv ${csv} --output-dir ${WORK}/bad --device tpu)
expect_match("${last_err}" "tpu" "bad device")
run(3 --run tiny__r8 --config ${WORK}/absent.yaml)
# A download that fails is a runtime failure (exit 4) naming the URL.
file(WRITE ${WORK}/url.csv "url,query,annotation\nhttp://127.0.0.1:9/x.png,q,r\n")
run(4 --model-id ${model} --csv ${WORK}/url.csv --output-dir ${WORK}/bad --fetch-retries 0 --image-cache-dir ${WORK}/cache)
expect_match("${last_err}" "http://127.0.0.1:9/x.png" "URL named")

# Bad usage (exit 2).
run(2)
run(2 --bogus)
run(2 --csv)
run(2 --model-id ${model} --csv ${csv})
run(2 --run tiny__r8 --csv ${csv})
run(2 --model-id ${model} ${common} --output-dir ${WORK}/u --batch-size 0)
run(2 --model-id ${model} ${common} --output-dir ${WORK}/u --max-new-tokens many)
run(2 --model-id ${model} ${common} --output-dir ${WORK}/u --max-samples 0)
run(2 --model-id ${model} ${common} --output-dir ${WORK}/u --temperature hot)
run(2 --model-id ${model} ${common} --output-dir ${WORK}/u --seed -1)
run(2 --model-id ${model} ${common} --output-dir ${WORK}/u --meteor sometimes)
run(2 --model-id ${model} ${common} --output-dir ${WORK}/u --fetch-timeout-ms 0)
run(2 --model-id ${model} ${common} --output-dir ${WORK}/u stray)
file(REMOVE_RECURSE ${WORK})
