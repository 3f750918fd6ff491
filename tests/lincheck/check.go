package lincheck

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// CheckTimeout bounds one porcupine check.
const CheckTimeout = 60 * time.Second

// Check runs porcupine on history; on a violation it writes the
// visualization and fails with its path.
func Check(t testing.TB, history []porcupine.Operation, notes []porcupine.Annotation) {
	t.Helper()
	model := Model()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, history, CheckTimeout)
	t.Logf("porcupine: %s for %d operations in %v", res, len(history), time.Since(start).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Fatalf("porcupine timed out after %v on %d operations: shorten the traffic or lower its rate", CheckTimeout, len(history))
	}
	info.AddAnnotations(notes)
	dir, err := os.MkdirTemp("", "cadre-linearizability-")
	if err != nil {
		t.Fatalf("history is not linearizable, and the visualization could not be written: %v", err)
	}
	path := filepath.Join(dir, "history.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		t.Fatalf("history is not linearizable, and the visualization could not be written: %v", err)
	}
	t.Fatalf("history is not linearizable (%d operations); open %s", len(history), path)
}
