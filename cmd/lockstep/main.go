// Command lockstep builds server data from Spark output, seals it as an
// immutable release, publishes it to blob storage, moves release channels,
// and pulls releases onto server boxes.
//
// This package is the CLI only: flags to options, one call into the library,
// signals and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	_ "time/tzdata" // schedule timezones on hosts without a zone database

	"github.com/urfave/cli/v2"

	// Blob drivers: library code takes a *blob.Bucket; only main links drivers.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/pipeline/reader"
	"github.com/lockstep-data/lockstep/publish"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, one table for every command (DESIGN.md).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitGate        = 3
	exitConflict    = 4
	exitVerify      = 5
	exitInterrupted = 130
)

// errUsage marks a command line that cannot work.
var errUsage = errors.New("usage")

func main() {
	// IMDSv1 is the EC2 metadata protocol AWS retired for v2; the SDK's
	// fallback to it prints a WARN line on every machine without AWS
	// credentials. Set AWS_EC2_METADATA_V1_DISABLED=false to allow it.
	if _, set := os.LookupEnv("AWS_EC2_METADATA_V1_DISABLED"); !set {
		os.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp()
	args, err := reorderArgs(app, os.Args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	code := exitCode(ctx, err)
	stop()
	if os.Getenv("LOCKSTEP_CRASH_AT_OP") != "" || os.Getenv("LOCKSTEP_PAUSE_AT_OP") != "" {
		// The crash tests read how many store operations a command makes.
		fmt.Fprintf(os.Stderr, "lockstep: store operations: %d\n", publish.StoreOps())
	}
	if err != nil {
		msg := err.Error()
		if h := storeHint(msg); h != "" {
			msg += "; " + h
		}
		fmt.Fprintln(os.Stderr, "lockstep:", msg)
	}
	os.Exit(code)
}

// storeHints say what to check for the cloud errors a mistyped store URL
// or missing credentials give; the SDKs' own text names neither. The first
// match wins: no credentials at all also reads as a 403 (from the metadata
// service).
var storeHints = []struct {
	needles []string
	hint    string
}{
	{[]string{"no EC2 IMDS role found", "failed to refresh cached credentials", "could not find default credentials"},
		"no cloud credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or GOOGLE_APPLICATION_CREDENTIALS"},
	{[]string{"failed to get shared config profile"},
		"AWS_PROFILE names a profile that ~/.aws/config (or AWS_CONFIG_FILE) does not have"},
	{[]string{"NoSuchBucket", "ContainerNotFound", "bucket doesn't exist"},
		"the bucket (or container) does not exist: check its name in --store (or LOCKSTEP_STORE), and endpoint= for MinIO and other S3 servers"},
	{[]string{"InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthenticationFailed", "AccessDenied", "StatusCode: 403"},
		"the store refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, or GOOGLE_APPLICATION_CREDENTIALS, and the bucket's policy"},
	{[]string{"connection refused", "no such host", "i/o timeout", "dial tcp"},
		"the store's endpoint did not answer: check the host in --store (endpoint= for S3 servers) and the network"},
}

func storeHint(msg string) string {
	for _, h := range storeHints {
		for _, n := range h.needles {
			if strings.Contains(msg, n) {
				return h.hint
			}
		}
	}
	return ""
}

// exitCode maps an error to the exit-code table, in one place.
func exitCode(ctx context.Context, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return exitInterrupted
	case errors.Is(err, errUsage), errors.Is(err, pipeline.ErrSpec),
		errors.Is(err, formats.ErrUnknownFormat), errors.Is(err, formats.ErrBadOption), errors.Is(err, formats.ErrBadQuery),
		errors.Is(err, publish.ErrBadName), errors.Is(err, publish.ErrBadURL):
		return exitUsage
	case errors.Is(err, pipeline.ErrGateFailed):
		return exitGate
	case errors.Is(err, publish.ErrConflict):
		return exitConflict
	case errors.Is(err, publish.ErrVerify), errors.Is(err, publish.ErrReleaseExists), errors.Is(err, publish.ErrIncompatible):
		return exitVerify
	case errors.Is(err, reader.ErrCorrupt):
		return exitError
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return exitError
}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", errUsage, c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: use text or json", errUsage, c.String("log-format"))
}
