// Package vlmrt is a Go binding of libvlmrt (include/vlmrt.h) through cgo.
//
// Handles (Checkpoint, Session, MetricsResult) are freed deterministically by their Close method; a finalizer
// frees a handle that was not closed, as a backstop only. Errors are *Error values carrying the library's
// status and message. Thread rules follow the header: a Session serves one call at a time (the binding holds a
// mutex so that concurrent calls on one Session queue instead of racing), Session.Cancel may be called from any
// goroutine, and different sessions run in parallel.
package vlmrt

/*
#cgo pkg-config: vlmrt
#include <stdlib.h>
#include <vlmrt.h>

// Defined in callbacks.go (exported from Go); the C signatures the library expects.
int vlmrtGoOnToken(size_t prompt_index, int64_t token, void *user_data);
static int vlmrt_go_on_token(size_t prompt_index, int64_t token, void *user_data) {
  return vlmrtGoOnToken(prompt_index, token, user_data);
}
static void vlmrt_set_streaming(vlm_generation_options *o, uintptr_t handle) {
  o->on_token = vlmrt_go_on_token;
  o->user_data = (void *)handle;
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// Status is a vlm_status error code.
type Status int

const (
	InvalidArgument Status = C.VLM_ERR_INVALID_ARGUMENT
	NotFound        Status = C.VLM_ERR_NOT_FOUND
	IOError         Status = C.VLM_ERR_IO
	CorruptData     Status = C.VLM_ERR_CORRUPT_DATA
	Unsupported     Status = C.VLM_ERR_UNSUPPORTED
	LimitExceeded   Status = C.VLM_ERR_LIMIT_EXCEEDED
	Cancelled       Status = C.VLM_ERR_CANCELLED
	OutOfMemory     Status = C.VLM_ERR_OUT_OF_MEMORY
	Internal        Status = C.VLM_ERR_INTERNAL
)

// String is the library's name for the status ("not found").
func (s Status) String() string { return C.GoString(C.vlm_status_name(C.vlm_status(s))) }

// Error is a failed call: its status and the message the library recorded.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string { return e.Status.String() + ": " + e.Message }

// call runs f on one locked OS thread so that vlm_last_error (per thread) reads the message of this call.
func call(f func() C.vlm_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	status := f()
	if status == C.VLM_OK {
		return nil
	}
	return &Error{Status: Status(status), Message: C.GoString(C.vlm_last_error())}
}

// Version is the library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.vlm_version()) }

// VersionNumber is MAJOR*10000 + MINOR*100 + PATCH.
func VersionNumber() int { return int(C.vlm_version_number()) }

// ABIVersion is the shared library's SOVERSION.
func ABIVersion() int { return int(C.vlm_abi_version()) }

// ModelLocate resolves a model folder or a Hugging Face id in the offline cache to a local folder.
func ModelLocate(model string) (string, error) {
	cm := C.CString(model)
	defer C.free(unsafe.Pointer(cm))
	var out *C.char
	if err := call(func() C.vlm_status { return C.vlm_model_locate(cm, &out) }); err != nil {
		return "", err
	}
	defer C.vlm_string_free(out)
	return C.GoString(out), nil
}

// ---- checkpoints ----

// TensorInfo describes one tensor of a checkpoint.
type TensorInfo struct {
	Name   string
	DType  string
	Shape  []int64
	NBytes uint64
}

// Checkpoint is a safetensors checkpoint opened for inspection. Close it when done.
type Checkpoint struct {
	mu  sync.Mutex
	raw *C.vlm_checkpoint
}

// OpenCheckpoint opens a model folder, a .safetensors file or an index .json file.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var raw *C.vlm_checkpoint
	if err := call(func() C.vlm_status { return C.vlm_checkpoint_open(cp, &raw) }); err != nil {
		return nil, err
	}
	c := &Checkpoint{raw: raw}
	runtime.SetFinalizer(c, (*Checkpoint).Close)
	return c, nil
}

// Close frees the checkpoint; later calls fail with InvalidArgument. Safe to call twice.
func (c *Checkpoint) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.raw != nil {
		C.vlm_checkpoint_free(c.raw)
		c.raw = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

// Len is the number of tensors.
func (c *Checkpoint) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(C.vlm_checkpoint_tensor_count(c.raw))
}

// Tensor describes tensor i (tensors are ordered by name).
func (c *Checkpoint) Tensor(i int) (TensorInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var info C.vlm_tensor_info
	if err := call(func() C.vlm_status { return C.vlm_checkpoint_tensor_info(c.raw, C.size_t(i), &info) }); err != nil {
		return TensorInfo{}, err
	}
	shape := make([]int64, int(info.ndim))
	if info.ndim > 0 {
		copy(shape, unsafe.Slice((*int64)(unsafe.Pointer(info.shape)), int(info.ndim)))
	}
	return TensorInfo{Name: C.GoString(info.name), DType: C.GoString(info.dtype), Shape: shape, NBytes: uint64(info.nbytes)}, nil
}

// ---- images ----

// Image is an 8-bit RGB image (rows top to bottom, 3 bytes per pixel, no padding).
type Image struct {
	Width, Height int
	Pixels        []byte
}

func takeImage(raw *C.vlm_image) *Image {
	defer C.vlm_image_free(raw)
	n := int(raw.width) * int(raw.height) * 3
	return &Image{Width: int(raw.width), Height: int(raw.height), Pixels: C.GoBytes(unsafe.Pointer(raw.pixels), C.int(n))}
}

// LoadImage decodes a PNG or JPEG file as Pillow does.
func LoadImage(path string) (*Image, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var raw *C.vlm_image
	if err := call(func() C.vlm_status { return C.vlm_image_load(cp, nil, &raw) }); err != nil {
		return nil, err
	}
	return takeImage(raw), nil
}

// DecodeImage decodes PNG or JPEG bytes.
func DecodeImage(data []byte) (*Image, error) {
	if len(data) == 0 {
		return nil, &Error{Status: InvalidArgument, Message: "no image bytes"}
	}
	buf := C.CBytes(data)
	defer C.free(buf)
	var raw *C.vlm_image
	if err := call(func() C.vlm_status { return C.vlm_image_decode(buf, C.size_t(len(data)), nil, &raw) }); err != nil {
		return nil, err
	}
	return takeImage(raw), nil
}

// ---- sessions ----

// SessionOptions configure NewSession; zero values keep the library's defaults.
type SessionOptions struct {
	Model      string
	Device     string // "cpu" (default), "cuda", "cuda:N"
	DType      string // "float32" (default), "bfloat16", "float16"
	MinPixels  uint64
	MaxPixels  uint64
	NumThreads int
	// 0 (default): 12-bit coded weight copies for bfloat16 decode steps where the CPU reads them; -1: none.
	CodedWeights int
}

// Session is a loaded model. Close it when done.
type Session struct {
	mu  sync.Mutex // one call at a time, as the header requires
	raw *C.vlm_session
	// cancelMu guards raw against Close while Cancel runs; Cancel does not take mu (a call holds it).
	cancelMu sync.RWMutex
}

// cStrings frees every C string it made.
type cStrings []unsafe.Pointer

func (s *cStrings) add(v string) *C.char {
	p := C.CString(v)
	*s = append(*s, unsafe.Pointer(p))
	return p
}

func (s *cStrings) addOrNull(v string) *C.char {
	if v == "" {
		return nil
	}
	return s.add(v)
}

func (s *cStrings) free() {
	for _, p := range *s {
		C.free(p)
	}
}

// NewSession loads a model.
func NewSession(o SessionOptions) (*Session, error) {
	var strs cStrings
	defer strs.free()
	var co C.vlm_session_options
	C.vlm_session_options_init(&co)
	co.model = strs.add(o.Model)
	co.device = strs.addOrNull(o.Device)
	co.dtype = strs.addOrNull(o.DType)
	co.min_pixels = C.uint64_t(o.MinPixels)
	co.max_pixels = C.uint64_t(o.MaxPixels)
	co.num_threads = C.int(o.NumThreads)
	co.coded_weights = C.int(o.CodedWeights)
	var raw *C.vlm_session
	if err := call(func() C.vlm_status { return C.vlm_session_create(&co, &raw) }); err != nil {
		return nil, err
	}
	s := &Session{raw: raw}
	runtime.SetFinalizer(s, (*Session).Close)
	return s, nil
}

// Close frees the session after any running call finished. Safe to call twice.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancelMu.Lock()
	defer s.cancelMu.Unlock()
	if s.raw != nil {
		C.vlm_session_free(s.raw)
		s.raw = nil
		runtime.SetFinalizer(s, nil)
	}
	return nil
}

// Cancel asks the session's running generation to stop after the current step. Safe from any goroutine.
func (s *Session) Cancel() {
	s.cancelMu.RLock()
	defer s.cancelMu.RUnlock()
	if s.raw != nil {
		C.vlm_session_cancel(s.raw)
	}
}

// Prompt is one user message: images (PNG or JPEG files) before the text, and an optional system message.
type Prompt struct {
	Text          string
	SystemMessage string
	Images        []string
}

// GenerationOptions; zero values mean "unset" (generation_config.json, then transformers' defaults apply).
type GenerationOptions struct {
	MaxNewTokens, MinNewTokens, NumBeams, TopK int
	Temperature, TopP, RepetitionPenalty       float64
	LengthPenalty                              float64
	DoSample                                   *bool
	Seed                                       uint64
	// OnToken, when set, receives every new token; return false to stop.
	OnToken func(promptIndex int, token int64) bool
}

// Generation is one continuation.
type Generation struct {
	Text         string
	Tokens       []int64
	FinishReason string // "eos", "length", "stop_string" or "cancelled"
}

// Score is the log-likelihood of a continuation.
type Score struct {
	TokenLogprobs []float64
	Sum           float64
	IsGreedy      bool
}

// cPrompts builds C prompts in C memory (cgo forbids Go memory holding Go pointers to be passed to C).
func cPrompts(prompts []Prompt, strs *cStrings) *C.vlm_prompt {
	size := C.size_t(unsafe.Sizeof(C.vlm_prompt{})) * C.size_t(len(prompts))
	arr := (*C.vlm_prompt)(C.calloc(1, size))
	*strs = append(*strs, unsafe.Pointer(arr))
	list := unsafe.Slice(arr, len(prompts))
	for i, p := range prompts {
		list[i].text = strs.add(p.Text)
		if p.SystemMessage != "" {
			list[i].system_message = strs.add(p.SystemMessage)
		}
		if len(p.Images) > 0 {
			paths := (**C.char)(C.calloc(C.size_t(len(p.Images)), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
			*strs = append(*strs, unsafe.Pointer(paths))
			pathList := unsafe.Slice(paths, len(p.Images))
			for k, img := range p.Images {
				pathList[k] = strs.add(img)
			}
			list[i].image_paths = paths
			list[i].num_images = C.size_t(len(p.Images))
		}
	}
	return arr
}

func (s *Session) handle() (*C.vlm_session, error) {
	if s.raw == nil {
		return nil, &Error{Status: InvalidArgument, Message: "the session is closed"}
	}
	return s.raw, nil
}

// Generate produces one continuation per prompt (batched).
func (s *Session) Generate(prompts []Prompt, o GenerationOptions) ([]Generation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := s.handle()
	if err != nil {
		return nil, err
	}
	if len(prompts) == 0 {
		return nil, &Error{Status: InvalidArgument, Message: "no prompts"}
	}
	var strs cStrings
	defer strs.free()
	arr := cPrompts(prompts, &strs)
	var co C.vlm_generation_options
	C.vlm_generation_options_init(&co)
	co.max_new_tokens = C.int(o.MaxNewTokens)
	co.min_new_tokens = C.int(o.MinNewTokens)
	co.num_beams = C.int(o.NumBeams)
	co.top_k = C.int(o.TopK)
	co.temperature = C.double(o.Temperature)
	co.top_p = C.double(o.TopP)
	co.repetition_penalty = C.double(o.RepetitionPenalty)
	co.length_penalty = C.double(o.LengthPenalty)
	if o.DoSample != nil {
		if *o.DoSample {
			co.do_sample = 1
		} else {
			co.do_sample = 0
		}
	}
	co.seed = C.uint64_t(o.Seed)
	if o.OnToken != nil {
		h := cgo.NewHandle(o.OnToken)
		defer h.Delete()
		C.vlmrt_set_streaming(&co, C.uintptr_t(h))
	}
	var out *C.vlm_generation
	if err := call(func() C.vlm_status { return C.vlm_generate(raw, arr, C.size_t(len(prompts)), &co, &out) }); err != nil {
		return nil, err
	}
	defer C.vlm_generations_free(out, C.size_t(len(prompts)))
	results := make([]Generation, len(prompts))
	for i, g := range unsafe.Slice(out, len(prompts)) {
		tokens := make([]int64, int(g.num_tokens))
		if g.num_tokens > 0 {
			copy(tokens, unsafe.Slice((*int64)(unsafe.Pointer(g.tokens)), int(g.num_tokens)))
		}
		results[i] = Generation{Text: C.GoString(g.text), Tokens: tokens, FinishReason: C.GoString(g.finish_reason)}
	}
	return results, nil
}

// ScoreRequest asks for the log-likelihood of Continuation after Prompt.
type ScoreRequest struct {
	Prompt       Prompt
	Continuation string
}

// Score computes continuation log-likelihoods, one forward pass per request.
func (s *Session) Score(requests []ScoreRequest) ([]Score, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := s.handle()
	if err != nil {
		return nil, err
	}
	if len(requests) == 0 {
		return nil, &Error{Status: InvalidArgument, Message: "no requests"}
	}
	var strs cStrings
	defer strs.free()
	prompts := make([]Prompt, len(requests))
	for i, r := range requests {
		prompts[i] = r.Prompt
	}
	promptArr := unsafe.Slice(cPrompts(prompts, &strs), len(requests))
	size := C.size_t(unsafe.Sizeof(C.vlm_score_request{})) * C.size_t(len(requests))
	arr := (*C.vlm_score_request)(C.calloc(1, size))
	strs = append(strs, unsafe.Pointer(arr))
	list := unsafe.Slice(arr, len(requests))
	for i, r := range requests {
		list[i].prompt = promptArr[i]
		list[i].continuation = strs.add(r.Continuation)
	}
	var out *C.vlm_score_result
	if err := call(func() C.vlm_status { return C.vlm_score(raw, arr, C.size_t(len(requests)), &out) }); err != nil {
		return nil, err
	}
	defer C.vlm_score_results_free(out, C.size_t(len(requests)))
	scores := make([]Score, len(requests))
	for i, r := range unsafe.Slice(out, len(requests)) {
		lp := make([]float64, int(r.num_tokens))
		if r.num_tokens > 0 {
			copy(lp, unsafe.Slice((*float64)(unsafe.Pointer(r.token_logprobs)), int(r.num_tokens)))
		}
		scores[i] = Score{TokenLogprobs: lp, Sum: float64(r.sum), IsGreedy: r.is_greedy != 0}
	}
	return scores, nil
}

// ---- metrics ----

// MeteorMode selects how METEOR is computed.
type MeteorMode int

const (
	MeteorFull           MeteorMode = C.VLM_METEOR_FULL
	MeteorWithoutWordnet MeteorMode = C.VLM_METEOR_WITHOUT_WORDNET
	MeteorOff            MeteorMode = C.VLM_METEOR_OFF
)

// MetricsExample is one prediction with its references.
type MetricsExample struct {
	Prediction string
	References []string
}

// MetricsResult holds corpus and per-example scores. Close it when done.
type MetricsResult struct {
	mu  sync.Mutex
	raw *C.vlm_metrics_result
}

// ScoreMetrics scores predictions against references (exact match, BLEU, METEOR, ROUGE-L, ...).
func ScoreMetrics(examples []MetricsExample, meteor MeteorMode) (*MetricsResult, error) {
	var strs cStrings
	defer strs.free()
	var arr *C.vlm_metrics_example
	if len(examples) > 0 {
		arr = (*C.vlm_metrics_example)(C.calloc(C.size_t(len(examples)), C.size_t(unsafe.Sizeof(C.vlm_metrics_example{}))))
		strs = append(strs, unsafe.Pointer(arr))
		list := unsafe.Slice(arr, len(examples))
		for i, e := range examples {
			list[i].prediction = strs.add(e.Prediction)
			list[i].prediction_tokens = -1
			if len(e.References) > 0 {
				refs := (**C.char)(C.calloc(C.size_t(len(e.References)), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
				strs = append(strs, unsafe.Pointer(refs))
				refList := unsafe.Slice(refs, len(e.References))
				for k, r := range e.References {
					refList[k] = strs.add(r)
				}
				list[i].references = refs
				list[i].num_references = C.size_t(len(e.References))
			}
		}
	}
	var co C.vlm_metrics_options
	C.vlm_metrics_options_init(&co)
	co.meteor_mode = C.int(meteor)
	var raw *C.vlm_metrics_result
	if err := call(func() C.vlm_status { return C.vlm_metrics_score(arr, C.size_t(len(examples)), &co, &raw) }); err != nil {
		return nil, err
	}
	r := &MetricsResult{raw: raw}
	runtime.SetFinalizer(r, (*MetricsResult).Close)
	return r, nil
}

// Close frees the result. Safe to call twice.
func (r *MetricsResult) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.raw != nil {
		C.vlm_metrics_result_free(r.raw)
		r.raw = nil
		runtime.SetFinalizer(r, nil)
	}
	return nil
}

// Value returns one corpus metric ("bleu", "rougeL", ...) and the name of its reference implementation.
func (r *MetricsResult) Value(name string) (float64, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var value C.double
	var impl *C.char
	if err := call(func() C.vlm_status { return C.vlm_metrics_result_value(r.raw, cn, &value, &impl) }); err != nil {
		return 0, "", err
	}
	return float64(value), C.GoString(impl), nil
}

// CorpusJSON is the content of generation_metrics.json.
func (r *MetricsResult) CorpusJSON() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out *C.char
	if err := call(func() C.vlm_status { return C.vlm_metrics_result_corpus_json(r.raw, &out) }); err != nil {
		return "", err
	}
	defer C.vlm_string_free(out)
	return C.GoString(out), nil
}

// NumExamples is the number of scored examples.
func (r *MetricsResult) NumExamples() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(C.vlm_metrics_result_num_examples(r.raw))
}

// ---- logging ----

// LogLevel is a vlm_log_level.
type LogLevel int

const (
	LogDebug   LogLevel = C.VLM_LOG_DEBUG
	LogInfo    LogLevel = C.VLM_LOG_INFO
	LogWarning LogLevel = C.VLM_LOG_WARNING
	LogError   LogLevel = C.VLM_LOG_ERROR
	LogOff     LogLevel = C.VLM_LOG_OFF
)

// SetLogLevel drops lines below level.
func SetLogLevel(level LogLevel) error {
	return call(func() C.vlm_status { return C.vlm_set_log_level(C.vlm_log_level(level)) })
}

// String is the library's name for the level.
func (l LogLevel) String() string { return C.GoString(C.vlm_log_level_name(C.vlm_log_level(l))) }

func init() {
	// Sanity check of the header this package was compiled against.
	if C.VLMRT_ABI_VERSION != C.vlm_abi_version() {
		panic(fmt.Sprintf("vlmrt: compiled against ABI %d, loaded library has ABI %d", C.VLMRT_ABI_VERSION, C.vlm_abi_version()))
	}
}
