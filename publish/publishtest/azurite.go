package publishtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// AzuriteEnv names the Azurite (Microsoft's Azure Storage emulator) blob
// endpoint that scripts/testenv exports, host:port.
const AzuriteEnv = "LOCKSTEP_AZURITE"

// Azurite creates a fresh container on the test Azurite server and returns an
// azblob:// store URL for it. Credentials are Azurite's well-known
// development account, from AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY.
func Azurite(t testing.TB, prefix string) string {
	t.Helper()
	host := Service(t, AzuriteEnv, "Azurite")
	account, key := os.Getenv("AZURE_STORAGE_ACCOUNT"), os.Getenv("AZURE_STORAGE_KEY")
	cred, err := azblob.NewSharedKeyCredential(account, key)
	if err != nil {
		t.Fatal(err)
	}
	client, err := azblob.NewClientWithSharedKeyCredential("http://"+host+"/"+account+"/", cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	container := "t-" + hex.EncodeToString(rnd[:])
	if _, err := client.CreateContainer(context.Background(), container, nil); err != nil {
		t.Fatalf("create container on Azurite at %s: %v", host, err)
	}
	q := url.Values{"protocol": {"http"}, "domain": {host}, "localemu": {"true"}}
	return "azblob://" + container + "/" + strings.Trim(prefix, "/") + "?" + q.Encode()
}
