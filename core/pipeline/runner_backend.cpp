// The runner's real backend: the trainer, and a session with the run's adapter for evaluation.
#include "pipeline/runner.h"

#include "base/error.h"
#include "base/fs.h"
#include "model/image_feature_store.h"
#include "session/session.h"

#include "pipeline/evaluate.h"

namespace vlm {

PipelineBackend default_pipeline_backend() {
  PipelineBackend backend;
  backend.train = [](const TrainingJob& job) -> TrainingSummary {
    return run_training(job);
  };
  backend.evaluate = [](const EvaluationRequest& request) -> EvaluationOutcome {
    SessionOptions session_options;
    session_options.model = request.model;
    session_options.load = request.load;
    session_options.load.coded_decode_weights =
        request.load.coded_decode_weights &&
        coded_weights_serve(std::int64_t{request.batch_size} * request.generation.num_beams.value_or(1));
    session_options.image = request.image;
    std::unique_ptr<Session> session = Session::open(session_options);
    if (!request.adapter_dir.empty()) session->load_adapter(request.adapter_dir);
    if (!request.image_feature_store_dir.empty() && !session->model().info().vision_tower_prefix.empty()) {
      session->set_image_feature_store(std::make_shared<ImageFeatureStore>(
          request.image_feature_store_dir, image_feature_fingerprint(session->folder(), session->model(), "no"),
          request.image_feature_store_mb * 1024 * 1024));
    }
    EvaluationJob job;
    job.csv = request.csv;
    job.base_dir = request.base_dir;
    job.image_column = request.data.image_column;
    job.query_column = request.data.query_column;
    job.annotation_column = request.data.annotation_column;
    job.instruction_column = request.data.instruction_column;
    job.response_column = request.data.response_column;
    job.batch_size = request.batch_size;
    job.max_samples = request.data.max_eval_samples;
    job.generation = request.generation;
    job.output_dir = request.output_dir;
    job.model_label = request.model;
    if (!request.adapter_dir.empty()) job.adapters = {request.adapter_dir};
    job.on_progress = request.on_progress;
    job.on_log = request.on_log;
    job.cancel = request.cancel;
    EvaluationSummary summary = run_evaluation(*session, job);
    EvaluationOutcome outcome;
    outcome.metrics = std::move(summary.metrics);
    outcome.examples = summary.examples;
    outcome.predictions_path = summary.predictions_path;
    outcome.metrics_path = summary.metrics_path;
    return outcome;
  };
  return backend;
}

}  // namespace vlm
