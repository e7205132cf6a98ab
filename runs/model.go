package runs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/internal/number"
	"github.com/semirobust/srtool/internal/option"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// LoadModel reads the model at path and prepends the per-channel
// normalisation the model expects (analyzer.PrependNormalization): mean and
// std are comma-separated numbers (number.Floats), "" for none. An invalid
// mean or std wraps option.Err.
func LoadModel(path, mean, std string) (*onnxio.Model, error) {
	m, err := onnxio.Read(path)
	if err != nil {
		return nil, err
	}
	mu, err := number.Floats(mean)
	if err != nil {
		return nil, option.Errorf("--mean: %v", err)
	}
	sigma, err := number.Floats(std)
	if err != nil {
		return nil, option.Errorf("--std: %v", err)
	}
	return analyzer.PrependNormalization(m, mu, sigma)
}

// CheckThreads bounds an intra-op thread count: 0 (ONNX Runtime's default)
// to 4 × the CPUs. The error wraps option.Err.
func CheckThreads(n int) error {
	if limit := 4 * runtime.NumCPU(); n < 0 || n > limit {
		return option.Errorf("--threads %d is outside 0..%d (4 × the %d CPUs; 0 = one per physical core)", n, limit, runtime.NumCPU())
	}
	return nil
}

// Classifier opens m, read from path, on eng and checks that d's samples
// and labels fit it. The caller closes it.
func Classifier(m *onnxio.Model, path string, eng ort.Options, d *dataset.Dataset) (*diffmodel.Classifier, error) {
	clf, err := diffmodel.NewClassifier(m, eng)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := d.CheckShape(path, clf.InputShape()); err != nil {
		clf.Close()
		return nil, err
	}
	if err := d.CheckLabels(clf.NumClasses(), path); err != nil {
		clf.Close()
		return nil, err
	}
	return clf, nil
}

// CheckModelData checks that d's samples and labels fit m, read from path,
// from the graph alone (onnxio.Signature), without opening a session.
func CheckModelData(m *onnxio.Model, path string, d *dataset.Dataset) error {
	sample, classes, err := onnxio.Signature(m)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := d.CheckShape(path, sample); err != nil {
		return err
	}
	return d.CheckLabels(classes, path)
}

// WriteModel writes a trained model without the normalisation LoadModel
// prepended, so it takes the same inputs as the model it came from.
func WriteModel(path string, m *onnxio.Model) error {
	return onnxio.Write(path, analyzer.StripNormalization(m))
}

// ExportSafetensors writes a model's parameters keyed by PyTorch names
// (without the normalisation LoadModel prepended), recording source.
func ExportSafetensors(m *onnxio.Model, path, source string) error {
	ts, err := checkpoint.Export(analyzer.StripNormalization(m))
	if err != nil {
		return err
	}
	return checkpoint.WriteSafetensors(path, ts, map[string]string{"format": "pt", "source": source})
}

// WriteTrained writes a trained or fine-tuned model to out and, when
// safetensors is not "", its weights keyed by the PyTorch names of source;
// an unfinished run's model (its best epoch so far) goes to the same names
// with PartialSuffix, and a finished run removes such leftovers
// (WriteOutput). It returns the model's path and the SHA-256 of every file
// written, by path, for the report, which is written after them: a kill
// between two renames must not leave an undetectable mix of old and new
// files.
func WriteTrained(m *onnxio.Model, out, safetensors, source string, complete bool) (string, map[string]string, error) {
	model, err := WriteOutput(out, complete, func(path string) error { return WriteModel(path, m) })
	if err != nil {
		return "", nil, err
	}
	paths := []string{model}
	if safetensors != "" {
		p, err := WriteOutput(safetensors, complete, func(path string) error { return ExportSafetensors(m, path, source) })
		if err != nil {
			return "", nil, err
		}
		paths = append(paths, p)
	}
	digests, err := report.FileDigests(paths...)
	return model, digests, err
}

// ModelSHA256 is the hex SHA-256 of m's encoding (as LoadModel left it),
// which reports record.
func ModelSHA256(m *onnxio.Model) (string, error) {
	b, err := m.Encode()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// readAnalyzed reads the model at path and finds its weight layers.
func readAnalyzed(path string) (*onnxio.Model, *analyzer.Analysis, error) {
	m, err := onnxio.Read(path)
	if err != nil {
		return nil, nil, err
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, an, nil
}
