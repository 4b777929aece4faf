// Package publishtest gives tests real stores: a fresh bucket on the MinIO
// server that `make test` starts (scripts/testenv), alongside mem:// and file://.
package publishtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// EndpointEnv names the MinIO endpoint that scripts/testenv exports.
const EndpointEnv = "LOCKSTEP_S3_ENDPOINT"

// Service returns the value of env, which scripts/testenv sets when it has
// started the service. Unset, it skips the test when run bare and fails it
// under CI=true, where a missing service is a failure.
func Service(t testing.TB, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is unset under CI=true: %s is missing (run `make test`)", env, what)
		}
		t.Skipf("%s unset: run `make test` for %s", env, what)
	}
	return v
}

// MinIO creates a fresh bucket on the test MinIO server and returns a store
// URL for it with the given prefix. Without the server it skips the test when
// run bare, and fails it under CI=true, where a missing service is a failure.
func MinIO(t testing.TB, prefix string) string {
	t.Helper()
	endpoint := Service(t, EndpointEnv, "MinIO")
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	bucket := strings.Trim("t-"+name, "-") + "-" + hex.EncodeToString(rnd[:])
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s on %s: %v", bucket, endpoint, err)
	}
	q := url.Values{"endpoint": {endpoint}, "use_path_style": {"true"}, "region": {"us-east-1"}}
	return "s3://" + bucket + "/" + strings.Trim(prefix, "/") + "?" + q.Encode()
}

// Backend is one kind of store the conformance suites run on.
type Backend struct {
	Name string
	URL  func(t testing.TB) string // a fresh, empty store
}

// Backends are the stores that can run here: mem://, file:// in a temporary
// folder, a fresh MinIO bucket (S3) and a fresh Azurite container (Azure).
var Backends = []Backend{
	{"mem", func(testing.TB) string { return "mem://" }},
	{"file", func(t testing.TB) string { return "file://" + filepath.Join(t.TempDir(), "store") }},
	{"minio", func(t testing.TB) string { return MinIO(t, "releases") }},
	{"azurite", func(t testing.TB) string { return Azurite(t, "releases") }},
}
