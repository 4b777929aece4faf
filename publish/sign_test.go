package publish

import (
	"strings"
	"testing"
)

// Keys load from files and env:VAR, errors never show key material, and a
// signature checks only its own bytes under a trusted key.
func TestSigning(t *testing.T) {
	priv, pub, id, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOCKSTEP_TEST_KEY", string(priv))
	t.Setenv("LOCKSTEP_TEST_PUB", string(pub))
	s, err := LoadSigner("env:LOCKSTEP_TEST_KEY")
	if err != nil || s.ID() != id {
		t.Fatalf("signer: %v %v", s, err)
	}
	trust, err := LoadKeyring([]string{"env:LOCKSTEP_TEST_PUB"})
	if err != nil || len(trust) != 1 {
		t.Fatalf("keyring: %v %v", trust, err)
	}
	sig := s.Sign([]byte("manifest"))
	if err := trust.Verify("m", []byte("manifest"), sig); err != nil {
		t.Errorf("good signature: %v", err)
	}
	for what, c := range map[string]struct {
		data string
		sig  *Signature
		want string
	}{
		"changed":  {"manifest!", sig, "changed after signing"},
		"unsigned": {"manifest", nil, "is not signed"},
		"unknown":  {"manifest", &Signature{KeyID: "0011223344556677", Algorithm: "ed25519", Value: sig.Value}, "not trusted"},
		"algo":     {"manifest", &Signature{KeyID: id, Algorithm: "rsa", Value: sig.Value}, "changed after signing"},
	} {
		if err := trust.Verify("m", []byte(c.data), c.sig); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", what, err, c.want)
		}
	}
	t.Setenv("LOCKSTEP_TEST_BAD", "not a key "+string(priv[40:80]))
	for _, ref := range []string{"env:LOCKSTEP_TEST_BAD", "env:LOCKSTEP_TEST_PUB", "env:LOCKSTEP_UNSET_VAR", "/nonexistent/k.key"} {
		_, err := LoadSigner(ref)
		if err == nil || strings.Contains(err.Error(), string(priv[40:80])) {
			t.Errorf("LoadSigner(%s): %v", ref, err)
		}
	}
	if _, err := LoadKeyring([]string{"env:LOCKSTEP_TEST_BAD"}); err == nil {
		t.Errorf("a bad public key was accepted")
	}
}
