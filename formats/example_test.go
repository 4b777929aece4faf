package formats_test

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
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
	// unknown format "parquet" (valid: arrow, file, fst, geo, kv, mmdb)
}

// A format that can split its asset implements formats.ShardedConfig: the
// pipeline then gives it one writer per shard and publishes each shard as
// its own asset, NAME-<i>of<N>.
func ExampleShardedConfig() {
	f, _ := all.Registry().Lookup("kv")
	cfg, err := f.Configure(map[string]any{"key": "id", "value": "raw", "value_columns": "city", "shards": 2})
	if err != nil {
		panic(err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "city", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{3, 1, 2}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"Oslo", "Lisboa", "Zürich"}, nil)
	rec := b.NewRecordBatch()

	sc := cfg.(formats.ShardedConfig)
	files := make([]bytes.Buffer, sc.Shards())
	w, _ := sc.NewShardedWriter(func(i int) (io.Writer, error) { return &files[i], nil }, schema)
	_ = w.Write(context.Background(), rec)
	if err := w.Close(context.Background()); err != nil {
		panic(err)
	}
	for i := range files {
		r, _ := f.Open(bytes.NewReader(files[i].Bytes()), int64(files[i].Len()))
		res, _ := r.Query(context.Background(), nil, 10)
		fmt.Printf("%dof%d %v\n", i+1, sc.Shards(), res.Rows)
	}
	fmt.Println(w.ShardRows())
	// Output:
	// 1of2 [[1 Lisboa] [2 Zürich]]
	// 2of2 [[3 Oslo]]
	// [2 1]
}
