package publish_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"gocloud.dev/blob"

	"github.com/lockstep-data/lockstep/publish"
	"github.com/lockstep-data/lockstep/publish/publishtest"
)

// BenchmarkPublish publishes one 64 MiB asset to a fresh store; its peer,
// BenchmarkUploadPeer, uploads the same bytes with a bare gocloud Upload.
// The ratio of the two is what lockstep's checks (hash while uploading,
// create-if-absent, manifest and build record) cost.
func BenchmarkPublish(b *testing.B) {
	for _, be := range publishtest.Backends {
		b.Run(be.Name, func(b *testing.B) {
			data := make([]byte, 64<<20)
			rand.Read(data)
			b.SetBytes(int64(len(data)))
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				s := open(b, be.URL(b))
				st := stage(b, "r1", "fp1", map[string]string{"big": string(data)})
				b.StartTimer()
				if _, err := publish.Publish(context.Background(), s, st, publish.PublishOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUploadPeer(b *testing.B) {
	for _, be := range publishtest.Backends {
		b.Run(be.Name, func(b *testing.B) {
			data := make([]byte, 64<<20)
			rand.Read(data)
			b.SetBytes(int64(len(data)))
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				s := open(b, be.URL(b))
				b.StartTimer()
				err := s.Bucket().Upload(context.Background(), "blobs/x", bytes.NewReader(data), &blob.WriterOptions{ContentType: "application/octet-stream"})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
