package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"gocloud.dev/blob"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

// ErrDeltaFeature is a Delta table that needs a reader feature lockstep
// does not support; the error names the feature.
var ErrDeltaFeature = errors.New("unsupported Delta feature")

// supportedReaderFeatures are the Delta reader features lockstep honours:
// deletion vectors are applied to the rows read (delta_dv.go), column
// mapping to the columns (delta_mapping.go).
var supportedReaderFeatures = map[string]bool{
	"timestampNtz": true, "v2Checkpoint": true, "vacuumProtocolCheck": true,
	"typeWidening": true, "typeWidening-preview": true,
	"deletionVectors": true, "columnMapping": true,
}

const maxLogLine = 64 << 20

type deltaAdd struct {
	Path            string          `json:"path"`
	PartitionValues json.RawMessage `json:"partitionValues"`
	Size            int64           `json:"size"`
	DeletionVector  json.RawMessage `json:"deletionVector"`
}

// fileID is a file's identity in the log: its path and, when it has one,
// its deletion vector's unique id (storage type, path or inline data, and
// offset), as the Delta protocol defines it. A DELETE that adds a deletion
// vector to a file writes `remove` of the file without one and `add` of the
// same path with one, in either order within a commit: keyed by path alone,
// the file would vanish from the snapshot (rows lost).
func (a *deltaAdd) fileID() string {
	if !a.hasDV() {
		return a.Path
	}
	var dv deletionVector // the descriptor, unchecked: parseDV checks it when the file is kept
	if json.Unmarshal(a.DeletionVector, &dv) != nil {
		return a.Path + "\x00" + string(a.DeletionVector)
	}
	id := a.Path + "\x00" + dv.StorageType + dv.PathOrInlineDv
	if dv.Offset != nil {
		id += "@" + strconv.FormatInt(*dv.Offset, 10)
	}
	return id
}

func (a *deltaAdd) hasDV() bool {
	return len(a.DeletionVector) > 0 && string(a.DeletionVector) != "null"
}

type deltaAction struct {
	Add      *deltaAdd `json:"add"`
	Remove   *deltaAdd `json:"remove"`
	Protocol *struct {
		MinReaderVersion int      `json:"minReaderVersion"`
		ReaderFeatures   []string `json:"readerFeatures"`
	} `json:"protocol"`
	MetaData *struct {
		SchemaString     string          `json:"schemaString"`
		PartitionColumns []string        `json:"partitionColumns"`
		Configuration    json.RawMessage `json:"configuration"`
	} `json:"metaData"`
	Sidecar *struct {
		Path string `json:"path"`
	} `json:"sidecar"`
}

type deltaSnap struct {
	version    int64
	files      []*blob.ListObject
	values     [][]*string
	dvs        []*deletionVector // per file; nil where a file has none
	partitions []Partition
	fields     []*deltaField  // the table schema
	mapping    *columnMapping // nil unless column mapping is on
}

var (
	commitRe     = regexp.MustCompile(`^(\d{20})\.json$`)
	checkpointRe = regexp.MustCompile(`^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$`)
	v2Re         = regexp.MustCompile(`^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$`)
)

// deltaSnapshot reconstructs a Delta table's live files at version want
// (nil: the latest) from its newest complete checkpoint and the JSON
// commits after it (PROTOCOL.md, "Action Reconciliation").
func deltaSnapshot(ctx context.Context, b *blob.Bucket, want *int64, objs []*blob.ListObject) (*deltaSnap, error) {
	byKey := map[string]*blob.ListObject{}
	commits := map[int64]string{}
	type cp struct {
		keys  []string
		parts int
	}
	cps := map[int64]*cp{}
	latest := int64(-1)
	for _, o := range objs {
		byKey[o.Key] = o
		name, ok := strings.CutPrefix(o.Key, "_delta_log/")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		if m := commitRe.FindStringSubmatch(name); m != nil {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			commits[v] = o.Key
			latest = max(latest, v)
		} else if m := checkpointRe.FindStringSubmatch(name); m != nil {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			n := 1
			if m[3] != "" {
				n, _ = strconv.Atoi(m[3])
			}
			if cps[v] == nil || cps[v].parts != n {
				cps[v] = &cp{parts: n}
			}
			cps[v].keys = append(cps[v].keys, o.Key)
			latest = max(latest, v)
		} else if m := v2Re.FindStringSubmatch(name); m != nil {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			cps[v] = &cp{parts: 1, keys: []string{o.Key}}
			latest = max(latest, v)
		}
	}
	if latest < 0 {
		return nil, fmt.Errorf("_delta_log/ holds no commits or checkpoints")
	}
	target := latest
	if want != nil {
		if *want > latest || *want < 0 {
			return nil, fmt.Errorf("version %d asked for, but the log ends at %d", *want, latest)
		}
		target = *want
	}
	// The newest complete checkpoint at or before the target. The listing
	// is authoritative; _last_checkpoint only saves a listing, which we
	// have already done, so a corrupt or stale one changes nothing.
	start := int64(-1)
	for v, c := range cps {
		if v <= target && len(c.keys) == c.parts && v > start {
			start = v
		}
	}
	live := map[string]*deltaAdd{}
	var meta *deltaAction
	var proto *deltaAction
	apply := func(a *deltaAction, inCheckpoint bool) {
		switch {
		case a.Add != nil:
			live[a.Add.fileID()] = a.Add
		case a.Remove != nil && !inCheckpoint:
			delete(live, a.Remove.fileID())
		case a.MetaData != nil:
			meta = a
		case a.Protocol != nil:
			proto = a
		}
	}
	if start >= 0 {
		keys := append([]string{}, cps[start].keys...)
		sort.Strings(keys)
		for i := 0; i < len(keys); i++ {
			acts, err := readCheckpoint(ctx, b, keys[i], byKey[keys[i]].Size)
			if err != nil {
				return nil, err
			}
			for _, a := range acts {
				if a.Sidecar != nil {
					keys = append(keys, "_delta_log/_sidecars/"+path.Base(a.Sidecar.Path))
					if byKey[keys[len(keys)-1]] == nil {
						return nil, fmt.Errorf("checkpoint %s names sidecar %s, which is missing", keys[i], a.Sidecar.Path)
					}
					continue
				}
				apply(a, true)
			}
		}
	}
	for v := start + 1; v <= target; v++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		key, ok := commits[v]
		if !ok {
			return nil, fmt.Errorf("commit %020d.json is missing, so version %d cannot be rebuilt", v, target)
		}
		acts, err := readCommit(ctx, b, key)
		if err != nil {
			return nil, err
		}
		for _, a := range acts {
			apply(a, false)
		}
	}
	mode, err := checkProtocol(proto, meta)
	if err != nil {
		return nil, err
	}
	snap := &deltaSnap{version: target}
	if meta != nil {
		snap.partitions = deltaPartitions(meta.MetaData.SchemaString, meta.MetaData.PartitionColumns)
		if snap.fields, err = parseDeltaSchema(meta.MetaData.SchemaString); err != nil {
			return nil, err
		}
		if mode != "" {
			snap.mapping = newColumnMapping(mode, snap.fields)
		}
	}
	ids := make([]string, 0, len(live))
	for id := range live {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		add := live[id]
		p := add.Path
		var dv *deletionVector
		if add.hasDV() {
			if dv, err = parseDV(add.DeletionVector); err == nil {
				_, err = dv.key()
			}
			if err != nil {
				return nil, fmt.Errorf("file %s: %v", p, err)
			}
		}
		rel, err := url.PathUnescape(p)
		if err != nil || strings.Contains(rel, "://") || strings.HasPrefix(rel, "/") || strings.Contains("/"+rel+"/", "/../") {
			return nil, fmt.Errorf("log names file %q, which is not a path inside the table", p)
		}
		o := byKey[rel]
		if o == nil {
			return nil, fmt.Errorf("log names %s, which is missing from the table folder (vacuumed?)", rel)
		}
		vals, err := partitionValues(add.PartitionValues)
		if err != nil {
			return nil, fmt.Errorf("file %s: partitionValues: %v", rel, err)
		}
		row := make([]*string, len(snap.partitions))
		for i, part := range snap.partitions {
			key := part.Name
			if snap.mapping != nil {
				key = snap.mapping.physical(key)
			}
			if v, ok := vals[key]; ok {
				row[i] = v
			}
		}
		snap.files = append(snap.files, o)
		snap.values = append(snap.values, row)
		snap.dvs = append(snap.dvs, dv)
	}
	return snap, nil
}

// checkProtocol refuses a table that needs a reader feature lockstep does
// not honour, and returns its column mapping mode ("name", "id", or "" for
// none).
func checkProtocol(proto, meta *deltaAction) (mode string, err error) {
	if meta != nil && len(meta.MetaData.Configuration) > 0 {
		conf, err := partitionValues(meta.MetaData.Configuration)
		if err == nil {
			if m := conf["delta.columnMapping.mode"]; m != nil && *m != "none" {
				mode = *m
			}
		}
	}
	if mode != "" && mode != "name" && mode != "id" {
		return "", fmt.Errorf("%w: columnMapping mode %q (Delta defines name and id); pin delta_version: to a version before it was set", ErrDeltaFeature, mode)
	}
	if proto == nil {
		return mode, nil
	}
	p := proto.Protocol
	if p.MinReaderVersion > 3 {
		return "", fmt.Errorf("%w: minReaderVersion %d (a newer Delta protocol); pin delta_version: to a version written before it", ErrDeltaFeature, p.MinReaderVersion)
	}
	for _, f := range p.ReaderFeatures {
		if !supportedReaderFeatures[f] {
			return "", fmt.Errorf("%w: %s; rewrite the table without it, or pin delta_version: to a version before it was enabled", ErrDeltaFeature, f)
		}
	}
	return mode, nil
}

// partitionValues reads a string map as a JSON object (commits) or as the
// list of {key, value} an Arrow map marshals to (checkpoints).
func partitionValues(raw json.RawMessage) (map[string]*string, error) {
	out := map[string]*string{}
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	if raw[0] == '{' {
		return out, json.Unmarshal(raw, &out)
	}
	var kvs []struct {
		Key   string  `json:"key"`
		Value *string `json:"value"`
	}
	if err := json.Unmarshal(raw, &kvs); err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		out[kv.Key] = kv.Value
	}
	return out, nil
}

// deltaPartitions types the partition columns from the table schema.
func deltaPartitions(schemaString string, cols []string) []Partition {
	var s struct {
		Fields []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
	}
	_ = json.Unmarshal([]byte(schemaString), &s)
	types := map[string]string{}
	for _, f := range s.Fields {
		var t string
		if json.Unmarshal(f.Type, &t) == nil {
			types[f.Name] = t
		}
	}
	var out []Partition
	for _, c := range cols {
		var t arrow.DataType = arrow.BinaryTypes.String
		switch types[c] {
		case "integer", "short", "byte":
			t = arrow.PrimitiveTypes.Int32
		case "long":
			t = arrow.PrimitiveTypes.Int64
		case "double", "float":
			t = arrow.PrimitiveTypes.Float64
		case "date":
			t = arrow.FixedWidthTypes.Date32
		case "timestamp":
			t = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
		}
		out = append(out, Partition{Name: c, Type: t, TypeName: t.String()})
	}
	return out
}

func readCommit(ctx context.Context, b *blob.Bucket, key string) ([]*deltaAction, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []*deltaAction
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLogLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		a := &deltaAction{}
		if err := json.Unmarshal(line, a); err != nil {
			return nil, fmt.Errorf("%s: %v", key, err)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", key, err)
	}
	return out, nil
}

// readCheckpoint reads a checkpoint (classic, one part of a multi-part one,
// a V2 top-level file in JSON or Parquet, or a sidecar) as actions.
func readCheckpoint(ctx context.Context, b *blob.Bucket, key string, size int64) ([]*deltaAction, error) {
	if strings.HasSuffix(key, ".json") {
		return readCommit(ctx, b, key)
	}
	f, err := reader.Open(&blobReaderAt{ctx: ctx, b: b, key: key}, size, key)
	if err != nil {
		return nil, err
	}
	var out []*deltaAction
	err = f.Records(ctx, 0, func(rec arrow.RecordBatch) error {
		for i := range int(rec.NumRows()) {
			m := map[string]any{}
			for c, col := range rec.Columns() {
				switch name := rec.ColumnName(c); name {
				case "add", "remove", "metaData", "protocol", "sidecar":
					if col.IsValid(i) {
						m[name] = col.GetOneForMarshal(i)
					}
				}
			}
			if len(m) == 0 {
				continue
			}
			data, err := json.Marshal(m)
			if err != nil {
				return err
			}
			a := &deltaAction{}
			if err := json.Unmarshal(data, a); err != nil {
				return fmt.Errorf("%s: %v", key, err)
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}
