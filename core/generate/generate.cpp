#include "generate/generate.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "generate/greedy_pick.h"
#include "io/hf_files.h"

namespace vlm {
namespace {

constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

[[noreturn]] void bad_option(const std::string& name, const std::string& why) {
  fail(ErrorCode::invalid_argument, "generation option " + name + " " + why);
}

torch::Tensor eos_tensor(const std::vector<std::int64_t>& eos, const torch::Device& device) {
  return torch::tensor(eos, torch::TensorOptions().dtype(torch::kInt64)).to(device);
}

bool is_cancelled(const GenerationOptions& options) {
  return options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed);
}

// The processors transformers applies, in its order: repetition penalty, min-new-tokens, then (sampling only)
// temperature, top-k, top-p.
torch::Tensor process_scores(torch::Tensor scores, const torch::Tensor& sequences, const torch::Tensor& leading_padding,
                             int generated, const ResolvedGenerationOptions& o, int min_tokens_to_keep) {
  if (o.repetition_penalty != 1.0) {
    scores = apply_repetition_penalty(scores, sequences, o.repetition_penalty, leading_padding);
  }
  if (generated < o.min_new_tokens) scores = suppress_eos(scores, o.eos_token_ids);
  if (o.do_sample) {
    if (o.temperature != 1.0) scores = apply_temperature(scores, o.temperature);
    if (o.top_k != 0) scores = apply_top_k(scores, o.top_k, min_tokens_to_keep);
    if (o.top_p < 1.0) scores = apply_top_p(scores, o.top_p, min_tokens_to_keep);
  }
  return scores;
}

int max_new_tokens_for(const ResolvedGenerationOptions& o, std::int64_t prompt_length) {
  if (o.max_new_tokens) return *o.max_new_tokens;
  if (o.max_length) {
    const std::int64_t n = *o.max_length - prompt_length;
    if (n <= 0) {
      fail(ErrorCode::invalid_argument, "the prompt has " + std::to_string(prompt_length) +
                                            " tokens, not fewer than generation_config.json's max_length " +
                                            std::to_string(*o.max_length) + ": set max_new_tokens");
    }
    return static_cast<int>(n);
  }
  return 20;  // transformers: "by default let's always generate 20 new tokens"
}

bool newly_contains_stop_string(const GenerationOptions& options, const std::vector<std::int64_t>& tokens) {
  if (options.stop_strings.empty() || !options.decode || tokens.empty()) return false;
  const std::string now = options.decode(tokens);
  const std::string before = options.decode(std::vector<std::int64_t>(tokens.begin(), tokens.end() - 1));
  for (const auto& s : options.stop_strings) {
    if (!s.empty() && now.find(s) != std::string::npos && before.find(s) == std::string::npos) return true;
  }
  return false;
}

struct Batch {
  torch::Tensor input_ids;       // [N, L]
  torch::Tensor attention_mask;  // [N, L]
};

Batch prepare_prompt(const ForwardInputs& prompt, const torch::Device& device) {
  if (!prompt.input_ids.defined() || prompt.input_ids.dim() != 2 || prompt.input_ids.size(0) == 0 ||
      prompt.input_ids.size(1) == 0) {
    fail(ErrorCode::invalid_argument, "generate: input_ids must be a non-empty [batch, length] tensor");
  }
  Batch b;
  b.input_ids = prompt.input_ids.to(device, torch::kInt64);
  if (prompt.attention_mask.defined()) {
    if (prompt.attention_mask.sizes() != prompt.input_ids.sizes()) {
      fail(ErrorCode::invalid_argument, "generate: attention_mask must have the shape of input_ids");
    }
    b.attention_mask = prompt.attention_mask.to(device, torch::kInt64);
    if ((b.attention_mask.sum(1) == 0).any().item<bool>()) {
      fail(ErrorCode::invalid_argument, "generate: a prompt row is all padding");
    }
  } else {
    b.attention_mask = torch::ones_like(b.input_ids);
  }
  return b;
}

GenerationResult greedy_or_sample(VisionLanguageModel& model, const ForwardInputs& prompt, const GenerationOptions& options,
                                  const ResolvedGenerationOptions& o) {
  const torch::Device device = model.device();
  Batch batch = prepare_prompt(prompt, device);
  const std::int64_t rows = batch.input_ids.size(0);
  const int max_new = max_new_tokens_for(o, batch.input_ids.size(1));
  const torch::Tensor eos = eos_tensor(o.eos_token_ids, device);

  GenerationResult result;
  result.tokens.assign(rows, {});
  result.finish_reasons.assign(rows, FinishReason::length);
  result.scores.assign(rows, 0.0);
  std::vector<bool> finished(rows, false);

  at::Generator generator = at::detail::createCPUGenerator(o.seed);
  auto state = model.new_state(rows);
  ForwardInputs step{batch.input_ids, batch.attention_mask, prompt.vision, /*all_logits=*/false,
                     /*logit_positions=*/{}};
  torch::Tensor logits = model.forward(step, state.get());
  torch::Tensor sequences = batch.input_ids;
  torch::Tensor mask = batch.attention_mask;
  const torch::Tensor leading_padding = (mask != 0).to(torch::kInt32).argmax(1);
  // Without padding the decode steps need no mask (all ones is no mask): the model then builds none per step.
  const bool padded = (mask == 0).any().item<bool>();
  bool stop = false;

  for (int generated = 0; generated < max_new && !stop; ++generated) {
    torch::Tensor scores = logits.select(1, logits.size(1) - 1).to(torch::kFloat32);
    scores = process_scores(scores, sequences, leading_padding, generated, o, 1);
    torch::Tensor next, chosen_logprob;
    if (o.do_sample) {
      next = torch::multinomial(torch::softmax(scores, -1).cpu(), 1, false, generator).squeeze(1).to(device);
      chosen_logprob = torch::log_softmax(scores, -1).gather(1, next.unsqueeze(1)).squeeze(1).cpu();
    } else {
      auto pick = greedy_pick(scores);
      next = pick.index.to(device);
      chosen_logprob = pick.log_prob;
    }
    // Finished rows keep receiving the pad token, as transformers does.
    std::vector<std::int64_t> next_host(rows);
    const torch::Tensor next_cpu = next.cpu();
    for (std::int64_t r = 0; r < rows; ++r) next_host[r] = finished[r] ? o.pad_token_id : next_cpu[r].item<std::int64_t>();
    next = torch::tensor(next_host, torch::TensorOptions().dtype(torch::kInt64)).to(device);
    sequences = torch::cat({sequences, next.unsqueeze(1)}, 1);

    bool all_done = true;
    for (std::int64_t r = 0; r < rows; ++r) {
      if (finished[r]) continue;
      result.tokens[r].push_back(next_host[r]);
      result.scores[r] += chosen_logprob[r].item<double>();
      if (options.on_token && !options.on_token(r, next_host[r])) stop = true;
      if (std::find(o.eos_token_ids.begin(), o.eos_token_ids.end(), next_host[r]) != o.eos_token_ids.end()) {
        finished[r] = true;
        result.finish_reasons[r] = FinishReason::eos;
      } else if (newly_contains_stop_string(options, result.tokens[r])) {
        finished[r] = true;
        result.finish_reasons[r] = FinishReason::stop_string;
      }
      all_done = all_done && finished[r];
    }
    if (stop || is_cancelled(options)) {
      for (std::int64_t r = 0; r < rows; ++r)
        if (!finished[r]) result.finish_reasons[r] = FinishReason::cancelled;
      break;
    }
    if (all_done || generated + 1 == max_new) break;
    if (padded) mask = torch::cat({mask, torch::ones({rows, 1}, mask.options())}, 1);
    ForwardInputs decode{next.unsqueeze(1), padded ? mask : torch::Tensor(), {}, /*all_logits=*/false,
                         /*logit_positions=*/{}};
    logits = model.forward(decode, state.get());
  }
  return result;
}

// transformers' vectorised beam search (generation/utils.py _beam_search, 5.x), step for step.
GenerationResult beam_search(VisionLanguageModel& model, const ForwardInputs& prompt, const GenerationOptions& options,
                             const ResolvedGenerationOptions& o) {
  const torch::Device device = model.device();
  Batch batch = prepare_prompt(prompt, device);
  const std::int64_t B = batch.input_ids.size(0);
  const std::int64_t L = batch.input_ids.size(1);
  const std::int64_t nb = o.num_beams;
  const int max_new = max_new_tokens_for(o, L);
  const std::int64_t max_length = L + max_new;
  const std::int64_t n_eos = static_cast<std::int64_t>(o.eos_token_ids.size());
  const std::int64_t keep = std::max<std::int64_t>(2, 1 + n_eos) * nb;
  const double lp = o.length_penalty;
  const bool early_true = o.early_stopping == "true";
  const bool early_never = o.early_stopping == "never";
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  const auto b8 = torch::TensorOptions().dtype(torch::kBool).device(device);
  const torch::Tensor eos = eos_tensor(o.eos_token_ids, device);
  // transformers fills with `pad_token_id or eos_token_id[0]`: a pad id of 0 counts as unset there.
  const std::int64_t fill = (o.pad_token_id != 0 || o.eos_token_ids.empty()) ? o.pad_token_id : o.eos_token_ids[0];

  torch::Tensor top_num_beam_mask = torch::cat({torch::ones({nb}, b8), torch::zeros({keep - nb}, b8)});
  torch::Tensor running_sequences = torch::full({B, nb, max_length}, fill, i64);
  running_sequences.narrow(2, 0, L).copy_(batch.input_ids.unsqueeze(1).expand({B, nb, L}));
  torch::Tensor sequences = running_sequences.clone();
  torch::Tensor running_beam_scores = torch::zeros({B, nb}, f32);
  running_beam_scores.narrow(1, 1, nb - 1).fill_(-1e9);
  torch::Tensor beam_scores = torch::full({B, nb}, -1e9, f32);
  torch::Tensor is_sent_finished = torch::zeros({B, nb}, b8);
  torch::Tensor early_unsatisfied = torch::ones({B, 1}, b8);
  torch::Tensor hits = torch::zeros({B, nb}, b8);
  torch::Tensor running_beam_indices = torch::full({B, nb, max_new}, -1, i64);
  torch::Tensor beam_indices = running_beam_indices.clone();
  torch::Tensor batch_offset = torch::arange(B, i64).view({-1, 1}) * nb;

  auto gather_beams = [](const torch::Tensor& t, torch::Tensor idx) {
    while (idx.dim() < t.dim()) idx = idx.unsqueeze(-1);
    std::vector<std::int64_t> shape(t.sizes().begin(), t.sizes().end());
    shape[1] = idx.size(1);
    return torch::gather(t, 1, idx.expand(shape));
  };

  // Prefill once per prompt, then give every beam its own copy of the state.
  at::Generator generator = at::detail::createCPUGenerator(o.seed);
  auto state = model.new_state(B);
  ForwardInputs first{batch.input_ids, batch.attention_mask, prompt.vision, /*all_logits=*/false,
                      /*logit_positions=*/{}};
  torch::Tensor logits = model.forward(first, state.get());
  const torch::Tensor expand_rows = torch::arange(B, i64).repeat_interleave(nb);
  state->reorder(expand_rows);
  logits = logits.index_select(0, expand_rows);
  torch::Tensor prompt_mask = batch.attention_mask.index_select(0, expand_rows);
  torch::Tensor flat_running = batch.input_ids.index_select(0, expand_rows);
  const torch::Tensor leading_padding = (prompt_mask != 0).to(torch::kInt32).argmax(1);

  std::int64_t cur_len = L;
  bool cancelled = false;
  for (bool first_step = true;; first_step = false) {
    if (!first_step) {
      flat_running = running_sequences.narrow(2, 0, cur_len).reshape({B * nb, cur_len});
      torch::Tensor mask = torch::cat({prompt_mask, torch::ones({B * nb, cur_len - L}, prompt_mask.options())}, 1);
      ForwardInputs step{flat_running.narrow(1, cur_len - 1, 1), mask, {}, /*all_logits=*/false,
                         /*logit_positions=*/{}};
      logits = model.forward(step, state.get());
    }
    torch::Tensor log_probs = torch::log_softmax(logits.select(1, logits.size(1) - 1).to(torch::kFloat32), -1);
    log_probs = process_scores(log_probs, flat_running, leading_padding, static_cast<int>(cur_len - L), o,
                               static_cast<int>(n_eos + 1));
    const std::int64_t V = log_probs.size(-1);
    log_probs = (log_probs.view({B, nb, V}) + running_beam_scores.unsqueeze(2)).reshape({B, nb * V});

    // Top-k continuations.
    torch::Tensor topk_log_probs, topk_indices;
    if (o.do_sample) {
      topk_indices = torch::multinomial(torch::softmax(log_probs, -1).cpu(), keep, false, generator).to(device);
      topk_log_probs = torch::gather(log_probs, 1, topk_indices);
    } else {
      std::tie(topk_log_probs, topk_indices) = torch::topk(log_probs, keep);
    }
    const torch::Tensor topk_current_beam = topk_indices.div(V, "floor");
    torch::Tensor topk_running_beam_indices = gather_beams(running_beam_indices, topk_current_beam);
    torch::Tensor topk_running_sequences = gather_beams(running_sequences, topk_current_beam);
    const torch::Tensor topk_ids = topk_indices.remainder(V);
    topk_running_sequences.select(2, cur_len).copy_(topk_ids);
    topk_running_beam_indices.select(2, cur_len - L).copy_(topk_current_beam + batch_offset);

    // Stopping criteria on the candidates: max length, EOS.
    hits = torch::full({B, keep}, cur_len + 1 >= max_length, b8);
    if (n_eos > 0) hits = hits | torch::isin(topk_ids, eos);

    // Beams that keep running.
    torch::Tensor topk_running_log_probs = topk_log_probs + hits.to(torch::kFloat32) * -1.0e9;
    torch::Tensor next_topk = std::get<1>(torch::topk(topk_running_log_probs, nb));
    running_sequences = gather_beams(topk_running_sequences, next_topk);
    running_beam_scores = gather_beams(topk_running_log_probs, next_topk);
    running_beam_indices = gather_beams(topk_running_beam_indices, next_topk);

    // Finished hypotheses.
    torch::Tensor just_finished = hits & top_num_beam_mask.unsqueeze(0);
    torch::Tensor finished_scores = topk_log_probs / std::pow(static_cast<double>(cur_len + 1 - L), lp);
    torch::Tensor full = torch::all(is_sent_finished, 1, true) & early_true;
    finished_scores = finished_scores + full.to(torch::kFloat32) * -1.0e9;
    finished_scores = finished_scores + (~early_unsatisfied).to(torch::kFloat32) * -1.0e9;
    finished_scores = finished_scores + (~just_finished).to(torch::kFloat32) * -1.0e9;
    torch::Tensor merged_sequences = torch::cat({sequences, topk_running_sequences}, 1);
    torch::Tensor merged_scores = torch::cat({beam_scores, finished_scores}, 1);
    torch::Tensor merged_indices = torch::cat({beam_indices, topk_running_beam_indices}, 1);
    torch::Tensor merged_finished = torch::cat({is_sent_finished, just_finished}, 1);
    torch::Tensor best = std::get<1>(torch::topk(merged_scores, nb));
    sequences = gather_beams(merged_sequences, best);
    beam_scores = gather_beams(merged_scores, best);
    beam_indices = gather_beams(merged_indices, best);
    is_sent_finished = gather_beams(merged_finished, best);

    state->reorder(running_beam_indices.select(2, cur_len - L).reshape({B * nb}));
    cur_len += 1;

    // Early-stopping heuristic.
    const double best_length = (early_never && lp > 0.0) ? static_cast<double>(max_length - L) : static_cast<double>(cur_len - L);
    torch::Tensor best_possible = running_beam_scores.narrow(1, 0, 1) / std::pow(best_length, lp);
    torch::Tensor worst_finished =
        torch::where(is_sent_finished, std::get<0>(torch::min(beam_scores, 1, true)), torch::full({B, 1}, -1.0e9, f32));
    early_unsatisfied = early_unsatisfied & torch::any(best_possible > worst_finished, -1, true);

    const bool improvement_possible = torch::any(early_unsatisfied).item<bool>();
    const bool open_beam = !(torch::all(is_sent_finished).item<bool>() && early_true);
    const bool valid_continuations = !torch::all(hits).item<bool>();
    if (!(improvement_possible && open_beam && valid_continuations)) break;
    if (is_cancelled(options)) {
      cancelled = true;
      break;
    }
  }

  // The best finished hypothesis of every row (num_return_sequences = 1).
  GenerationResult result;
  const torch::Tensor seq_cpu = sequences.select(1, 0).cpu();
  const torch::Tensor idx_cpu = beam_indices.select(1, 0).cpu();
  const torch::Tensor score_cpu = beam_scores.select(1, 0).cpu();
  for (std::int64_t r = 0; r < B; ++r) {
    const std::int64_t n = (idx_cpu[r] != -1).sum().item<std::int64_t>();
    std::vector<std::int64_t> tokens(n);
    for (std::int64_t i = 0; i < n; ++i) tokens[i] = seq_cpu[r][L + i].item<std::int64_t>();
    FinishReason reason = FinishReason::length;
    if (!tokens.empty() && std::find(o.eos_token_ids.begin(), o.eos_token_ids.end(), tokens.back()) != o.eos_token_ids.end()) {
      reason = FinishReason::eos;
    }
    if (cancelled) reason = FinishReason::cancelled;
    if (options.on_token) {
      for (std::int64_t t : tokens)
        if (!options.on_token(r, t)) break;
    }
    result.tokens.push_back(std::move(tokens));
    result.finish_reasons.push_back(reason);
    result.scores.push_back(score_cpu[r].item<double>());
  }
  return result;
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::eos: return "eos";
    case FinishReason::length: return "length";
    case FinishReason::stop_string: return "stop_string";
    case FinishReason::cancelled: return "cancelled";
  }
  return "unknown";
}

ResolvedGenerationOptions resolve_generation_options(const GenerationOptions& options, const GenerationDefaults* d,
                                                     const ModelInfo& model) {
  ResolvedGenerationOptions o;
  auto pick = [](const auto& mine, const auto* theirs, auto fallback) {
    if (mine) return *mine;
    if (theirs && *theirs) return static_cast<decltype(fallback)>(**theirs);
    return fallback;
  };
  o.max_new_tokens = options.max_new_tokens ? options.max_new_tokens : (d ? d->max_new_tokens : std::nullopt);
  if (!o.max_new_tokens && d && d->max_length) o.max_length = d->max_length;
  o.min_new_tokens = pick(options.min_new_tokens, d ? &d->min_new_tokens : nullptr, 0);
  o.do_sample = pick(options.do_sample, d ? &d->do_sample : nullptr, false);
  o.temperature = pick(options.temperature, d ? &d->temperature : nullptr, 1.0);
  o.top_k = pick(options.top_k, d ? &d->top_k : nullptr, 50);
  o.top_p = pick(options.top_p, d ? &d->top_p : nullptr, 1.0);
  o.repetition_penalty = pick(options.repetition_penalty, d ? &d->repetition_penalty : nullptr, 1.0);
  o.num_beams = pick(options.num_beams, d ? &d->num_beams : nullptr, 1);
  o.length_penalty = pick(options.length_penalty, d ? &d->length_penalty : nullptr, 1.0);
  o.early_stopping = pick(options.early_stopping, d ? &d->early_stopping : nullptr, std::string("false"));
  if (options.eos_token_ids) {
    o.eos_token_ids = *options.eos_token_ids;
  } else if (d && !d->eos_token_ids.empty()) {
    o.eos_token_ids = d->eos_token_ids;
  } else {
    o.eos_token_ids = model.eos_token_ids;
  }
  if (options.pad_token_id) {
    o.pad_token_id = *options.pad_token_id;
  } else if (d && d->pad_token_id) {
    o.pad_token_id = *d->pad_token_id;
  } else if (model.pad_token_id >= 0) {
    o.pad_token_id = model.pad_token_id;
  } else {
    o.pad_token_id = o.eos_token_ids.empty() ? 0 : o.eos_token_ids[0];
  }
  o.seed = options.seed.value_or(0);

  if (o.max_new_tokens && *o.max_new_tokens < 1) bad_option("max_new_tokens", "must be at least 1");
  if (o.min_new_tokens < 0) bad_option("min_new_tokens", "must not be negative");
  if (o.num_beams < 1) bad_option("num_beams", "must be at least 1");
  if (o.do_sample && !(o.temperature > 0.0)) bad_option("temperature", "must be positive when sampling");
  if (o.top_k < 0) bad_option("top_k", "must not be negative (0 disables it)");
  if (!(o.top_p > 0.0 && o.top_p <= 1.0)) bad_option("top_p", "must be in (0, 1]");
  if (!(o.repetition_penalty > 0.0)) bad_option("repetition_penalty", "must be positive");
  if (o.early_stopping != "true" && o.early_stopping != "false" && o.early_stopping != "never") {
    bad_option("early_stopping", "must be true, false or \"never\"");
  }
  for (auto id : o.eos_token_ids) {
    if (id < 0 || (model.vocab_size > 0 && id >= model.vocab_size)) bad_option("eos_token_id", std::to_string(id) + " is outside the vocabulary");
  }
  return o;
}

GenerationResult generate(VisionLanguageModel& model, const ForwardInputs& prompt, const GenerationOptions& options,
                          const GenerationDefaults* checkpoint_defaults) {
  const ResolvedGenerationOptions o = resolve_generation_options(options, checkpoint_defaults, model.info());
  if (!options.stop_strings.empty() && !options.decode) {
    bad_option("stop_strings", "needs a decode function (the tokenizer) to match text");
  }
  torch::NoGradGuard no_grad;
  return o.num_beams > 1 ? beam_search(model, prompt, options, o) : greedy_or_sample(model, prompt, options, o);
}

torch::Tensor apply_repetition_penalty(const torch::Tensor& scores, const torch::Tensor& sequences, double penalty,
                                       const torch::Tensor& leading_padding) {
  const std::int64_t vocab = scores.size(-1);
  torch::Tensor ids = sequences;
  if (leading_padding.defined()) {
    // Left padding is not "generated text": transformers maps it to an extra column that is dropped.
    torch::Tensor positions = torch::arange(ids.size(1), ids.options()).unsqueeze(0);
    ids = ids.masked_fill(positions < leading_padding.unsqueeze(1), vocab);
  }
  ids = ids.clamp_max(vocab);  // ids beyond the output vocabulary cannot be generated: no penalty needed
  torch::Tensor padded = torch::constant_pad_nd(scores, {0, 1});
  torch::Tensor seen = torch::gather(padded, 1, ids);
  seen = torch::where(seen < 0, seen * penalty, seen / penalty);
  return padded.scatter(1, ids, seen).narrow(-1, 0, vocab);
}

torch::Tensor suppress_eos(const torch::Tensor& scores, const std::vector<std::int64_t>& eos_token_ids) {
  // Only the EOS columns change: filling them is far cheaper than a vocabulary-wide isin + where at every step.
  std::vector<std::int64_t> columns;
  for (const auto id : eos_token_ids) {
    if (id >= 0 && id < scores.size(-1)) columns.push_back(id);  // ids outside the vocabulary match nothing
  }
  if (columns.empty()) return scores;
  return scores.index_fill(-1, torch::tensor(columns, torch::kInt64).to(scores.device()), kMinusInf);
}

torch::Tensor apply_temperature(const torch::Tensor& scores, double temperature) { return scores / temperature; }

torch::Tensor apply_top_k(const torch::Tensor& scores, int top_k, int min_tokens_to_keep) {
  const std::int64_t k = std::min<std::int64_t>(std::max(top_k, min_tokens_to_keep), scores.size(-1));
  torch::Tensor kth = std::get<0>(torch::topk(scores, k)).narrow(-1, k - 1, 1);
  return scores.masked_fill(scores < kth, kMinusInf);
}

torch::Tensor apply_top_p(const torch::Tensor& scores, double top_p, int min_tokens_to_keep) {
  auto [sorted, order] = torch::sort(scores, /*dim=*/-1, /*descending=*/false);
  torch::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
  torch::Tensor remove_sorted = cumulative <= (1 - top_p);
  remove_sorted.narrow(-1, remove_sorted.size(-1) - min_tokens_to_keep, min_tokens_to_keep).fill_(false);
  torch::Tensor remove = remove_sorted.scatter(1, order, remove_sorted);
  return scores.masked_fill(remove, kMinusInf);
}

ContinuationScore score_continuation(VisionLanguageModel& model, const std::vector<std::int64_t>& prompt_ids,
                                     const std::vector<std::int64_t>& continuation, const VisionInputs& vision) {
  if (prompt_ids.empty()) fail(ErrorCode::invalid_argument, "score: the prompt must have at least one token");
  if (continuation.empty()) fail(ErrorCode::invalid_argument, "score: the continuation is empty");
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> all = prompt_ids;
  all.insert(all.end(), continuation.begin(), continuation.end());
  const torch::Device device = model.device();
  torch::Tensor ids = torch::tensor(all, torch::TensorOptions().dtype(torch::kInt64)).view({1, -1}).to(device);
  ForwardInputs inputs{ids, torch::Tensor(), vision, /*all_logits=*/true, /*logit_positions=*/{}};
  torch::Tensor logits = model.forward(inputs, nullptr).to(torch::kFloat32);
  const std::int64_t P = static_cast<std::int64_t>(prompt_ids.size());
  const std::int64_t C = static_cast<std::int64_t>(continuation.size());
  torch::Tensor relevant = logits[0].narrow(0, P - 1, C);  // the logits that predict each continuation token
  torch::Tensor log_probs = torch::log_softmax(relevant, -1).cpu();
  torch::Tensor greedy = relevant.argmax(-1).cpu();
  ContinuationScore score;
  score.is_greedy = true;
  for (std::int64_t i = 0; i < C; ++i) {
    const double lp = log_probs[i][continuation[i]].item<double>();
    score.token_logprobs.push_back(lp);
    score.sum += lp;
    if (greedy[i].item<std::int64_t>() != continuation[i]) score.is_greedy = false;
  }
  return score;
}

}  // namespace vlm
