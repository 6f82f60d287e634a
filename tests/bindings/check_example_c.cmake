cmake_policy(VERSION 3.18)
# bindings_c_examples/generate_score_metrics.c on the tiny Qwen2-VL checkpoint: the greedy tokens of
# transformers' generate() (tests/fixtures/session/cases.json "one_image"), the greedy continuation scored as
# greedy, and BLEU / ROUGE-L of the answer against a reference as sacrebleu 2.6.0 and rouge-score 0.1.2 compute
# them (values from tools/oracle/.venv: corpus_bleu = 22.089591134157878, rougeL F = 0.5714285714285715); then
# three LoRA training steps, the adapter saved and reloaded.
file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${EXAMPLE} ${FIXTURES}/session/qwen2_vl_tiny ${FIXTURES}/session/wide.png
                        "the assistant says w101 w101 w101" ${WORK}/adapter
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "example failed (${rc}):\n${out}\n${err}")
endif()
foreach(expected
    "text: assistant assistant assistant assistant assistant w101 w101 w101\n"
    "tokens: 6 6 6 6 6 101 101 101\n"
    "finish_reason: length\n"
    "streamed: 8\n"
    "score_tokens: 8\n"
    "score_is_greedy: 1\n"
    "score_sum_negative: 1\n"
    "bleu: 22.0896 \\(sacrebleu"
    "rougeL: 0.5714\n")
  if(NOT out MATCHES "${expected}")
    message(FATAL_ERROR "output lacks '${expected}':\n${out}")
  endif()
endforeach()
# Training: three updates whose loss falls, a PEFT adapter folder, and the same answer from the adapters attached
# by the trainer and from a second session that loads the saved folder.
if(NOT out MATCHES "step 1: loss ([0-9.]+) .*step 3: loss ([0-9.]+) ")
  message(FATAL_ERROR "no training steps in the output:\n${out}")
endif()
if(NOT CMAKE_MATCH_2 LESS CMAKE_MATCH_1)
  message(FATAL_ERROR "the loss did not fall in 3 steps (${CMAKE_MATCH_1} -> ${CMAKE_MATCH_2}):\n${out}")
endif()
if(NOT out MATCHES "reloaded_adapter_agrees: 1\n" OR NOT out MATCHES "trainable_parameters: [1-9][0-9]* of [1-9]")
  message(FATAL_ERROR "training part failed:\n${out}")
endif()
foreach(f adapter_config.json adapter_model.safetensors)
  if(NOT EXISTS ${WORK}/adapter/${f})
    message(FATAL_ERROR "the adapter folder lacks ${f}")
  endif()
endforeach()
if(NOT err MATCHES "^6 6 6 6 6 101 101 101")
  message(FATAL_ERROR "streamed tokens missing on stderr:\n${err}")
endif()
# Usage errors exit 2.
execute_process(COMMAND ${EXAMPLE} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "example without arguments exited ${rc}, expected 2")
endif()
# A missing model: exit 1 and the library's message.
execute_process(COMMAND ${EXAMPLE} ${FIXTURES}/session/no-such-model x y RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 1 OR NOT err MATCHES "error: vlm_session_create: .*no-such-model")
  message(FATAL_ERROR "missing model: exit ${rc}, stderr:\n${err}")
endif()
