package reader_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// canon gives the values of an Arrow array in the canonical JSON form that
// testdata/pyarrow_dump.py writes for pyarrow's.
func canon(a arrow.Array) []any {
	out := make([]any, a.Len())
	for i := range a.Len() {
		if a.IsNull(i) {
			continue
		}
		out[i] = canonAt(a, i)
	}
	return out
}

func canonAt(a arrow.Array, i int) any {
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Uint8:
		return int64(a.Value(i))
	case *array.Uint16:
		return int64(a.Value(i))
	case *array.Uint32:
		return int64(a.Value(i))
	case *array.Uint64:
		return a.Value(i)
	case *array.Float16:
		return fnum(float64(a.Value(i).Float32()))
	case *array.Float32:
		return fnum(float64(a.Value(i)))
	case *array.Float64:
		return fnum(a.Value(i))
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return hex.EncodeToString(a.Value(i))
	case *array.FixedSizeBinary:
		return hex.EncodeToString(a.Value(i))
	case *array.Timestamp:
		return int64(a.Value(i))
	case *array.Date32:
		return int64(a.Value(i))
	case *array.Time32:
		return int64(a.Value(i))
	case *array.Time64:
		return int64(a.Value(i))
	case *array.Decimal128:
		return a.Value(i).BigInt().String()
	case *array.Decimal256:
		return a.Value(i).BigInt().String()
	case *array.Struct:
		m := map[string]any{}
		st := a.DataType().(*arrow.StructType)
		for f := range st.NumFields() {
			c := a.Field(f)
			if c.IsNull(i) {
				m[st.Field(f).Name] = nil
			} else {
				m[st.Field(f).Name] = canonAt(c, i)
			}
		}
		return m
	case *array.Map:
		lo, hi := a.ValueOffsets(i)
		keys, items := a.Keys(), a.Items()
		out := []any{}
		for j := lo; j < hi; j++ {
			var k, v any
			if keys.IsValid(int(j)) {
				k = canonAt(keys, int(j))
			}
			if items.IsValid(int(j)) {
				v = canonAt(items, int(j))
			}
			out = append(out, []any{k, v})
		}
		return out
	case *array.List:
		lo, hi := a.ValueOffsets(i)
		vals := a.ListValues()
		out := []any{}
		for j := lo; j < hi; j++ {
			if vals.IsNull(int(j)) {
				out = append(out, nil)
			} else {
				out = append(out, canonAt(vals, int(j)))
			}
		}
		return out
	}
	return fmt.Sprintf("unsupported %s", a.DataType())
}

func fnum(v float64) any {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return v
}

// normJSON re-reads a JSON value with exact integers, so both sides compare
// alike: integers as int64 (or their text), other numbers as float64.
func normJSON(v any) any {
	b, _ := json.Marshal(v)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	dec.Decode(&out)
	return numbers(out)
}

func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return u
		}
		f, _ := v.Float64()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f) // Python writes 1.0 where Go writes 1
		}
		return f
	case []any:
		for i := range v {
			v[i] = numbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = numbers(v[k])
		}
	}
	return v
}

// pyarrowDump runs testdata/pyarrow_dump.py over files (relative to root)
// and returns each file's dump by path.
func pyarrowDump(t *testing.T, root string, files []string) map[string]map[string]any {
	t.Helper()
	py := os.Getenv("LOCKSTEP_PYTHON")
	if py == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("LOCKSTEP_PYTHON is unset under CI=true; run eval \"$(scripts/testenv env)\"")
		}
		t.Skip("LOCKSTEP_PYTHON is unset: run eval \"$(scripts/testenv env)\" to compare values with pyarrow")
	}
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "..", "..", "testdata", "pyarrow_dump.py")
	res := map[string]map[string]any{}
	// pyarrow crashes on some hostile files: note the crash and carry on
	// with the files after it.
	for len(files) > 0 {
		cmd := exec.Command(py, script, root)
		cmd.Stdin = strings.NewReader(strings.Join(files, "\n") + "\n")
		out, err := cmd.Output()
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<30)
		done := 0
		for sc.Scan() {
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("pyarrow_dump.py output: %v", err)
			}
			res[m["file"].(string)] = numbers(m).(map[string]any)
			done++
		}
		if err == nil {
			break
		}
		if done >= len(files) {
			t.Fatalf("pyarrow_dump.py: %v", err)
		}
		res[files[done]] = map[string]any{"file": files[done], "error": "pyarrow crashed: " + err.Error()}
		files = files[done+1:]
	}
	return res
}

// firstDiff describes where two canonical column values first differ.
func firstDiff(got, want []any) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d values, pyarrow has %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			return fmt.Sprintf("row %d: lockstep %.300s, pyarrow %.300s", i, g, w)
		}
	}
	return ""
}
