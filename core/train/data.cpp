#include "train/data.h"

#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "pipeline/csv.h"
#include "text/unicode.h"

namespace vlm {

Conversation training_conversation(const std::string& instruction, const std::string& response, bool with_image,
                                   bool with_response) {
  Conversation c;
  nlohmann::ordered_json user_content = nlohmann::ordered_json::array();
  if (with_image) user_content.push_back({{"type", "image"}});
  user_content.push_back({{"type", "text"}, {"text", instruction}});
  c.messages.push_back({{"role", "user"}, {"content", user_content}});
  if (with_response) {
    nlohmann::ordered_json assistant = nlohmann::ordered_json::array();
    assistant.push_back({{"type", "text"}, {"text", response}});
    c.messages.push_back({{"role", "assistant"}, {"content", assistant}});
  }
  return c;
}

namespace {

// Why a response cannot be trained on, or empty when it can. A response of whitespace alone (any Unicode
// White_Space, e.g. " ", "\t\n", U+3000) teaches only whitespace and is refused as an empty one is.
std::string response_problem(const std::string& response) {
  if (response.empty()) return "the response is empty; there is nothing to learn from this row";
  const std::string valid = text::to_valid_utf8(response);
  for (std::size_t i = 0; i < valid.size();)
    if (!text::is_whitespace(text::next_code_point(valid, i))) return {};
  return "the response is only whitespace; there is nothing to learn from this row (give it text or remove the row)";
}

std::string row_label(const CsvTable& table, std::size_t row) {
  return table.path + " row " + std::to_string(row + 1) + " (line " + std::to_string(table.row_lines[row]) + ")";
}

}  // namespace

TrainingExample make_training_example(const Session& session, const std::string& instruction,
                                      const std::string& response, const RgbImage* image,
                                      const TrainingDataOptions& options, const std::string& where) {
  if (const std::string problem = response_problem(response); !problem.empty())
    fail(ErrorCode::invalid_argument, where + ": " + problem);
  TrainingExample ex;
  ex.instruction = instruction;
  ex.response = response;
  const bool with_image = image != nullptr;
  Conversation full = training_conversation(instruction, response, with_image, true);
  Conversation prompt = training_conversation(instruction, response, with_image, false);
  if (with_image) {
    full.images.push_back(*image);
    prompt.images.push_back(*image);
  }
  const PreparedPrompt full_p = session.prepare(full, /*add_generation_prompt=*/false);
  const PreparedPrompt prompt_p = session.prepare(prompt, /*add_generation_prompt=*/true);
  const auto& ids = full_p.input_ids;
  const auto prompt_len = prompt_p.input_ids.size();
  if (prompt_len > ids.size() || !std::equal(prompt_p.input_ids.begin(), prompt_p.input_ids.end(), ids.begin())) {
    fail(ErrorCode::invalid_argument, where + ": the chat template renders the prompt differently with and without "
                                              "the response, so the response tokens cannot be located");
  }
  ex.input_ids = ids;
  ex.labels = ids;
  if (options.loss_on_response_only) {
    std::fill(ex.labels.begin(), ex.labels.begin() + static_cast<std::ptrdiff_t>(prompt_len), kIgnoreIndex);
  }
  const std::int64_t image_token = const_cast<Session&>(session).model().info().image_token_id;
  if (options.max_seq_length && static_cast<std::int64_t>(ids.size()) > *options.max_seq_length) {
    const auto keep = static_cast<std::size_t>(*options.max_seq_length);
    // Never cut an image span: the model needs all of an image's tokens or none.
    if (image_token >= 0 && keep > 0 && ids[keep - 1] == image_token && ids[keep] == image_token) {
      fail(ErrorCode::invalid_argument, where + ": max_seq_length " + std::to_string(keep) +
                                            " would cut inside the image's tokens; raise max_seq_length or lower "
                                            "the image pixel limits (max_pixels)");
    }
    ex.input_ids.resize(keep);
    ex.labels.resize(keep);
  }
  for (std::size_t i = 1; i < ex.labels.size(); ++i) ex.predicted_tokens += ex.labels[i] != kIgnoreIndex;
  if (ex.predicted_tokens == 0) {
    fail(ErrorCode::invalid_argument, where + ": no response token is left after truncation to max_seq_length " +
                                          std::to_string(options.max_seq_length.value_or(0)) + " (the prompt alone takes " +
                                          std::to_string(prompt_len) + " tokens); raise max_seq_length or shorten the instruction");
  }
  return ex;
}

ForwardInputs collate_examples(const Session& session, const std::vector<const TrainingExample*>& examples,
                               const std::vector<const RgbImage*>& images, torch::Tensor& labels,
                               std::vector<VisionInputs>* example_vision) {
  std::vector<PreparedPrompt> prompts;
  std::size_t width = 0;
  if (example_vision) example_vision->clear();
  for (std::size_t i = 0; i < examples.size(); ++i) {
    PreparedPrompt p;
    p.input_ids = examples[i]->input_ids;
    if (i < images.size() && images[i] != nullptr) p.pixels = session.image_processor()->process({*images[i]});
    if (example_vision) {
      example_vision->push_back(p.pixels.pixel_values.empty() ? VisionInputs{}
                                                              : session.make_batch({p}, /*pad_right=*/true).vision);
    }
    width = std::max(width, p.input_ids.size());
    prompts.push_back(std::move(p));
  }
  ForwardInputs batch = session.make_batch(prompts, /*pad_right=*/true);
  labels = torch::full({static_cast<std::int64_t>(examples.size()), static_cast<std::int64_t>(width)}, kIgnoreIndex,
                       torch::kInt64);
  for (std::size_t r = 0; r < examples.size(); ++r) {
    const auto& l = examples[r]->labels;
    labels[static_cast<std::int64_t>(r)]
        .narrow(0, 0, static_cast<std::int64_t>(l.size()))
        .copy_(torch::tensor(l, torch::kInt64));
  }
  return batch;
}

TrainingDataset TrainingDataset::build(const Session& session, const TrainingDataOptions& options) {
  TrainingDataset data;
  data.options_ = options;
  data.base_dir_ = std::filesystem::path(options.csv).parent_path().string();
  const CsvTable table = read_csv(options.csv);
  const auto image_col = table.column(options.image_column);
  const auto instruction_col = table.column(options.instruction_column);
  const auto response_col = table.column(options.response_column);
  std::size_t rows = table.rows.size();
  if (options.max_samples && *options.max_samples >= 0) rows = std::min<std::size_t>(rows, *options.max_samples);
  if (rows == 0) fail(ErrorCode::invalid_argument, options.csv + ": no training rows");

  std::vector<std::string> problems;
  for (std::size_t r = 0; r < rows; ++r) {
    const auto& fields = table.rows[r];
    const std::string where = row_label(table, r);
    TrainingExample ex;
    ex.row = static_cast<std::int64_t>(r);
    ex.line = table.row_lines[r];
    ex.image = fields[image_col];
    ex.instruction = fields[instruction_col];
    ex.response = fields[response_col];
    if (const std::string problem = response_problem(ex.response); !problem.empty()) {
      problems.push_back(where + ": " + problem);
      continue;
    }
    try {
      std::optional<RgbImage> image;
      if (!ex.image.empty()) image = load_image_reference(ex.image, data.base_dir_, options.fetch, where);
      TrainingExample built = make_training_example(session, ex.instruction, ex.response, image ? &*image : nullptr,
                                                    options, where);
      built.row = ex.row;
      built.line = ex.line;
      built.image = ex.image;
      data.examples_.push_back(std::move(built));
    } catch (const Error& e) {
      problems.push_back(std::string(e.what()).find(where) == std::string::npos ? where + ": " + e.what() : e.what());
    }
  }
  if (!problems.empty()) {
    std::ostringstream msg;
    msg << options.csv << ": " << problems.size() << " of " << rows << " training rows cannot be used; fix or remove them:";
    for (std::size_t i = 0; i < problems.size() && i < 20; ++i) msg << "\n  " << problems[i];
    if (problems.size() > 20) msg << "\n  ... and " << problems.size() - 20 << " more";
    fail(ErrorCode::invalid_argument, msg.str());
  }
  return data;
}

std::int64_t TrainingDataset::total_tokens() const {
  std::int64_t n = 0;
  for (const auto& ex : examples_) n += static_cast<std::int64_t>(ex.input_ids.size());
  return n;
}

ForwardInputs TrainingDataset::collate(const Session& session, const std::vector<std::size_t>& indices,
                                       torch::Tensor& labels, std::vector<VisionInputs>* example_vision) const {
  std::vector<const TrainingExample*> chosen;
  std::vector<RgbImage> images;
  images.reserve(indices.size());
  std::vector<const RgbImage*> image_ptrs;
  for (auto i : indices) {
    const auto& ex = examples_.at(i);
    chosen.push_back(&ex);
    if (!ex.image.empty()) {
      images.push_back(load_image_reference(ex.image, base_dir_, options_.fetch,
                                            options_.csv + " row " + std::to_string(ex.row + 1)));
      image_ptrs.push_back(&images.back());
    } else {
      image_ptrs.push_back(nullptr);
    }
  }
  return collate_examples(session, chosen, image_ptrs, labels, example_vision);
}

}  // namespace vlm
