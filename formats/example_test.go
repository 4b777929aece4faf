package formats_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats/all"
)

// Write an asset through the registry and read it back, as the pipeline and
// `lockstep query` do.
func Example() {
	f, err := all.Registry().Lookup("arrow")
	if err != nil {
		panic(err)
	}
	cfg, err := f.Configure(map[string]any{"compression": "zstd"})
	if err != nil {
		panic(err)
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "city", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"Lisboa", "Zürich"}, nil)
	rec := b.NewRecordBatch()

	var buf bytes.Buffer
	w, _ := cfg.NewWriter(&buf, schema)
	_ = w.Write(context.Background(), rec)
	_ = w.Close(context.Background())

	r, _ := f.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	res, _ := r.Query(context.Background(), nil, 10)
	fmt.Println(f.Info().Ext, r.Rows(), res.Rows)

	_, err = all.Registry().Lookup("parquet")
	fmt.Println(err)
	// Output:
	// .arrow 2 [[Lisboa] [Zürich]]
	// unknown format "parquet" (valid: arrow, fst, kv, mmdb)
}
