package vlmrt

// The binding against the real libvlmrt on the tiny fixtures of tests/fixtures: the same values as the C tests
// (tokens of transformers' generate(), cases.json "one_image"; BLEU / ROUGE-L from sacrebleu 2.6.0 and
// rouge-score 0.1.2 in tools/oracle/.venv).

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var expectedTokens = []int64{6, 6, 6, 6, 6, 101, 101, 101}

const expectedText = "assistant assistant assistant assistant assistant w101 w101 w101"

func fixtures() string {
	if dir := os.Getenv("VLMRT_FIXTURES_DIR"); dir != "" {
		return dir
	}
	return filepath.Join("..", "..", "tests", "fixtures")
}

func imagePrompt() Prompt {
	return Prompt{Text: "Describe this image .", Images: []string{filepath.Join(fixtures(), "session", "wide.png")}}
}

func newSession(t *testing.T) *Session {
	t.Helper()
	s, err := NewSession(SessionOptions{Model: filepath.Join(fixtures(), "session", "qwen2_vl_tiny")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func statusOf(err error) Status {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return -1
}

func TestVersions(t *testing.T) {
	if Version() != "0.1.0" || VersionNumber() != 100 || ABIVersion() != 0 {
		t.Fatalf("versions %s %d %d", Version(), VersionNumber(), ABIVersion())
	}
	if NotFound.String() != "not found" || LogWarning.String() != "warning" {
		t.Fatal("names")
	}
}

func TestCheckpointAndImage(t *testing.T) {
	folder, err := ModelLocate(filepath.Join(fixtures(), "io", "sharded"))
	if err != nil || !strings.HasSuffix(folder, "sharded") {
		t.Fatal(folder, err)
	}
	c, err := OpenCheckpoint(folder)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 5 {
		t.Fatalf("%d tensors", c.Len())
	}
	info, err := c.Tensor(0)
	want := TensorInfo{Name: "model.embed_tokens.weight", DType: "BF16", Shape: []int64{16, 8}, NBytes: 256}
	if err != nil || !reflect.DeepEqual(info, want) {
		t.Fatal(info, err)
	}
	if _, err := c.Tensor(5); statusOf(err) != InvalidArgument || !strings.Contains(err.Error(), "out of range") {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Close() != nil || c.Len() != 0 {
		t.Fatal("a closed checkpoint")
	}
	if _, err := c.Tensor(0); statusOf(err) != InvalidArgument {
		t.Fatal("a closed checkpoint must refuse calls:", err)
	}

	img, err := LoadImage(filepath.Join(fixtures(), "image", "rgb8.png"))
	if err != nil || img.Width != 23 || img.Height != 13 || len(img.Pixels) != 23*13*3 {
		t.Fatal(img, err)
	}
	data, _ := os.ReadFile(filepath.Join(fixtures(), "image", "rgb8.png"))
	img2, err := DecodeImage(data)
	if err != nil || !reflect.DeepEqual(img, img2) {
		t.Fatal("decode differs from load", err)
	}
	if _, err := LoadImage(filepath.Join(fixtures(), "image", "truncated.jpg")); statusOf(err) != CorruptData {
		t.Fatal(err)
	}
	if _, err := DecodeImage([]byte("plain text")); statusOf(err) != Unsupported {
		t.Fatal(err)
	}
}

func TestGenerateAndScore(t *testing.T) {
	s := newSession(t)
	defer s.Close()
	greedy := false
	var streamed []int64
	res, err := s.Generate([]Prompt{imagePrompt()}, GenerationOptions{MaxNewTokens: 8, DoSample: &greedy,
		OnToken: func(i int, tok int64) bool { streamed = append(streamed, tok); return true }})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res[0].Tokens, expectedTokens) || res[0].Text != expectedText || res[0].FinishReason != "length" {
		t.Fatalf("%+v", res[0])
	}
	if !reflect.DeepEqual(streamed, expectedTokens) {
		t.Fatal("streamed", streamed)
	}
	stopped, err := s.Generate([]Prompt{imagePrompt()}, GenerationOptions{MaxNewTokens: 8,
		OnToken: func(int, int64) bool { return false }})
	if err != nil || len(stopped[0].Tokens) != 1 || stopped[0].FinishReason != "cancelled" {
		t.Fatal(stopped, err)
	}
	two, err := s.Generate([]Prompt{imagePrompt(), imagePrompt()}, GenerationOptions{MaxNewTokens: 8})
	if err != nil || len(two) != 2 || !reflect.DeepEqual(two[1].Tokens, expectedTokens) {
		t.Fatal(two, err)
	}
	scores, err := s.Score([]ScoreRequest{{imagePrompt(), expectedText}, {imagePrompt(), "two cats"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, lp := range scores[0].TokenLogprobs {
		sum += lp
	}
	if len(scores[0].TokenLogprobs) != 8 || !scores[0].IsGreedy || math.Abs(sum-scores[0].Sum) > 1e-9 {
		t.Fatalf("%+v", scores[0])
	}
	if scores[1].IsGreedy || scores[1].Sum >= 0 {
		t.Fatalf("%+v", scores[1])
	}
	if _, err := s.Generate([]Prompt{imagePrompt()}, GenerationOptions{TopP: 1.5}); statusOf(err) != InvalidArgument ||
		!strings.Contains(err.Error(), "top_p") {
		t.Fatal(err)
	}
	if _, err := s.Score([]ScoreRequest{{imagePrompt(), ""}}); statusOf(err) != InvalidArgument {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Generate([]Prompt{imagePrompt()}, GenerationOptions{}); statusOf(err) != InvalidArgument {
		t.Fatal("a closed session must refuse calls:", err)
	}
	s.Cancel() // harmless after Close
}

func TestSessionErrors(t *testing.T) {
	_, err := NewSession(SessionOptions{Model: filepath.Join(fixtures(), "session", "missing")})
	if statusOf(err) != NotFound {
		t.Fatal(err)
	}
	_, err = NewSession(SessionOptions{Model: filepath.Join(fixtures(), "session", "qwen2_vl_tiny"), Device: "tpu"})
	if statusOf(err) != InvalidArgument || !strings.Contains(err.Error(), "tpu") {
		t.Fatal(err)
	}
}

// Two sessions generate at the same time from two goroutines; one goroutine cancels the other's long generation.
func TestConcurrentGenerateAndCancel(t *testing.T) {
	a, b := newSession(t), newSession(t)
	defer a.Close()
	defer b.Close()
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var long, short []Generation
	var longErr, shortErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		count := 0
		long, longErr = a.Generate([]Prompt{imagePrompt()}, GenerationOptions{MaxNewTokens: 400, MinNewTokens: 400,
			OnToken: func(int, int64) bool {
				count++
				once.Do(func() { close(started) })
				if count == 300 {
					time.Sleep(200 * time.Millisecond) // leave the canceller time before the end
				}
				return true
			}})
	}()
	go func() {
		defer wg.Done()
		<-started
		short, shortErr = b.Generate([]Prompt{imagePrompt()}, GenerationOptions{MaxNewTokens: 8})
		a.Cancel()
	}()
	wg.Wait()
	if shortErr != nil || !reflect.DeepEqual(short[0].Tokens, expectedTokens) {
		t.Fatal(short, shortErr)
	}
	if longErr != nil || long[0].FinishReason != "cancelled" || len(long[0].Tokens) >= 400 {
		t.Fatalf("%v %v", long[0].FinishReason, longErr)
	}
	n := len(long[0].Tokens)
	if n > 8 {
		n = 8
	}
	if !reflect.DeepEqual(long[0].Tokens[:n], expectedTokens[:n]) {
		t.Fatal(long[0].Tokens[:n])
	}
}

func TestMetrics(t *testing.T) {
	r, err := ScoreMetrics([]MetricsExample{{expectedText, []string{"the assistant says w101 w101 w101"}}}, MeteorWithoutWordnet)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bleu, impl, err := r.Value("bleu")
	if err != nil || math.Abs(bleu-22.089591134157878) > 1e-9 || !strings.HasPrefix(impl, "sacrebleu") {
		t.Fatal(bleu, impl, err)
	}
	rouge, _, err := r.Value("rougeL")
	if err != nil || math.Abs(rouge-0.5714285714285715) > 1e-12 {
		t.Fatal(rouge, err)
	}
	js, err := r.CorpusJSON()
	if err != nil || !strings.Contains(js, "\"bleu\"") || r.NumExamples() != 1 {
		t.Fatal(js, err)
	}
	if _, _, err := r.Value("nope"); statusOf(err) != NotFound {
		t.Fatal(err)
	}
	if _, err := ScoreMetrics([]MetricsExample{{"x", nil}}, MeteorOff); statusOf(err) != InvalidArgument {
		t.Fatal(err)
	}
	if SetLogLevel(LogLevel(25)) == nil || SetLogLevel(LogInfo) != nil {
		t.Fatal("log level")
	}
}
