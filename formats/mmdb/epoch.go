package mmdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// mmdbwriter takes the build epoch when the tree is made, and a
// build_epoch_column is only known once every row has been read. So the
// tree is made with a placeholder of four 0xFF bytes, and the writer holds
// back the end of the file, where the metadata is, to patch the real epoch
// in. Any epoch in [minEpoch, maxEpoch] is also four bytes long, so the
// file's layout does not change.
const (
	epochPlaceholder = 0xFFFFFFFF
	minEpoch         = 1 << 24
	maxEpoch         = 0xFFFFFFFE
	tailKeep         = 256 << 10 // more than any metadata section lockstep writes
)

var (
	metadataMarker = []byte("\xAB\xCD\xEFMaxMind.com")
	// The key "build_epoch" (a string of 11 bytes: 0x4B) and the placeholder
	// value (an extended type, uint64: 0x04 0x02, then four bytes).
	epochField = []byte("\x4Bbuild_epoch\x04\x02\xFF\xFF\xFF\xFF")
)

// tailWriter passes bytes on, except the last tailKeep.
type tailWriter struct {
	w    io.Writer
	tail []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.tail = append(t.tail, p...)
	if len(t.tail) > 2*tailKeep {
		n := len(t.tail) - tailKeep
		if _, err := t.w.Write(t.tail[:n]); err != nil {
			return 0, err
		}
		t.tail = append(t.tail[:0], t.tail[n:]...)
	}
	return len(p), nil
}

func (t *tailWriter) finish(epoch int64) error {
	m := bytes.LastIndex(t.tail, metadataMarker)
	if m < 0 {
		return errors.New("mmdb: no metadata section in the written file")
	}
	f := bytes.Index(t.tail[m:], epochField)
	if f < 0 {
		return errors.New("mmdb: no build_epoch placeholder in the metadata")
	}
	binary.BigEndian.PutUint32(t.tail[m+f+len(epochField)-4:], uint32(epoch))
	_, err := t.w.Write(t.tail)
	return err
}

// epochSeconds reads col[i] as Unix seconds. With a nil col it only says
// whether the type can be read.
func epochSeconds(t arrow.DataType, col arrow.Array, i int) (int64, bool) {
	switch t.ID() {
	case arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64, arrow.INT32, arrow.INT64, arrow.UINT32, arrow.UINT64:
	default:
		return 0, false
	}
	if col == nil || col.IsNull(i) {
		return 0, true
	}
	switch a := col.(type) {
	case *array.Timestamp:
		unit := t.(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).Unix(), true
	case *array.Date32:
		return a.Value(i).ToTime().Unix(), true
	case *array.Date64:
		return a.Value(i).ToTime().Unix(), true
	case *array.Int32:
		return int64(a.Value(i)), true
	case *array.Int64:
		return a.Value(i), true
	case *array.Uint32:
		return int64(a.Value(i)), true
	case *array.Uint64:
		return int64(min(a.Value(i), 1<<62)), true
	}
	return 0, true
}
